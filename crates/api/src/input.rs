//! Request bodies checked before any handler sees them. Every string in a JSON body or a form is
//! refused with 422 when it holds NUL or another control character (line breaks aside, which
//! the fields that allow them check again), so nothing a fuzzer or a careless paste sends can
//! reach PostgreSQL (which refuses NUL with an error that would be a 500) or a log line. Field
//! rules beyond that (free text, identifiers) are the domain's.
//!
//! Staff routes take [`Checked`] and [`CheckedForm`] instead of `web::Json` and `web::Form`. The
//! eligibility routes keep `web::Json`: every field there is parsed into a strict domain type
//! (insurer number, 記号, 番号, dates), which refuses control characters itself, and they are
//! the hot path.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shikaku_domain::free_text::forbidden_char;

use crate::console::ConsoleError;
use crate::error::{redact_numbers, ApiError};

/// A JSON body whose strings hold no control characters, deserialized into `T`.
#[derive(Debug)]
pub struct Checked<T>(pub T);

impl<T> Checked<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Checked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The JSON path of the first string (key or value) holding a forbidden character.
pub fn control_character_path(v: &Value) -> Option<String> {
    fn bad(s: &str) -> bool {
        s.chars().any(|c| forbidden_char(c, true))
    }
    fn walk(v: &Value, path: &mut String) -> bool {
        match v {
            Value::String(s) => bad(s),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(k, item)| {
                let len = path.len();
                path.push('.');
                // A key is shown only when it is clean; a bad key is named by position.
                if bad(k) {
                    path.push_str("<key>");
                    return true;
                }
                path.push_str(k);
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::from("$");
    walk(v, &mut path).then_some(path)
}

fn control_message(path: &str) -> String {
    format!("{path}: must not contain control characters (NUL, tabs, escape codes, direction overrides)")
}

impl<T: DeserializeOwned + 'static> FromRequest for Checked<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Reading as a Value goes through the app's JsonConfig: its size limit and its 400/413/
        // 422 mapping apply unchanged.
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            if let Some(path) = control_character_path(&value) {
                return Err(ApiError::Invalid(control_message(&path)).into());
            }
            // The path names the field ("source: unknown variant …"), which serde alone omits.
            serde_path_to_error::deserialize(value)
                .map(Checked)
                .map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    let message = if path == "." {
                        format!("invalid request body: {inner}")
                    } else {
                        format!("{path}: {inner}")
                    };
                    ApiError::Invalid(redact_numbers(&message)).into()
                })
        })
    }
}

/// A urlencoded form whose values hold no control characters, deserialized into `T`.
#[derive(Debug)]
pub struct CheckedForm<T>(pub T);

impl<T> CheckedForm<T> {
    /// The form.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for CheckedForm<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for CheckedForm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Through the console's FormConfig (limit, content type, its error page), as pairs.
        let pairs = web::Form::<Vec<(String, String)>>::from_request(req, payload);
        Box::pin(async move {
            let pairs = pairs.await?.into_inner();
            if let Some((name, _)) = pairs
                .iter()
                .find(|(k, v)| k.chars().chain(v.chars()).any(|c| forbidden_char(c, true)))
            {
                let name = if name.chars().any(|c| forbidden_char(c, true)) {
                    "<name>"
                } else {
                    name
                };
                return Err(ConsoleError::Api(ApiError::Invalid(format!(
                    "{name}: 制御文字（NUL・タブ・エスケープなど）は使えません"
                )))
                .into());
            }
            let encoded = serde_urlencoded::to_string(&pairs).map_err(|e| {
                ConsoleError::Api(ApiError::Invalid(format!("フォームの内容が不正です: {e}")))
            })?;
            serde_urlencoded::from_str(&encoded)
                .map(CheckedForm)
                .map_err(|e| {
                    ConsoleError::Api(ApiError::Invalid(redact_numbers(&format!(
                        "フォームの内容が不正です: {e}"
                    ))))
                    .into()
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_bad_string_is_named_by_its_path() {
        assert_eq!(
            control_character_path(&json!({"a": "ok", "b": ["x", "y\u{0}"]})).as_deref(),
            Some("$.b[1]")
        );
        assert_eq!(
            control_character_path(&json!({"reason": "a\tb"})).as_deref(),
            Some("$.reason")
        );
        assert_eq!(
            control_character_path(&json!({"k\u{1b}": 1})).as_deref(),
            Some("$.<key>")
        );
        assert_eq!(
            control_character_path(&json!({"remarks": "一行目\n二行目", "n": 1})),
            None
        );
        assert_eq!(
            control_character_path(&json!({"x": "\u{202e}evil"})).as_deref(),
            Some("$.x")
        );
    }
}
