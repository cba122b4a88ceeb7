//! Domain types and rules of shikaku, the insurer-side eligibility registry for Japanese public
//! health insurance with My Number linkage.
//!
//! Everything here is pure: no file, network or database I/O. Values are validated when built
//! and cannot hold invalid data afterwards. A My Number never appears in `Debug`, `Display`,
//! error messages or panics.
//!
//! - [`calendar`]: the date in Japan, which every date in the registry is.
//! - [`ids`]: 保険者番号, 記号, 番号, 枝番 and the person key.
//! - [`my_number`]: 個人番号 parsing and check digit, with masking types.
//! - [`person`]: sex, relationship, loss reason, postal code, names.
//! - [`certificate`]: 資格確認書 validity under the insurer's policy and the holder's events.
//! - [`copay`]: 一部負担金割合 and the legal-age rules behind it.
//! - [`protect`]: sealing My Numbers (AES-256-GCM) and their blind index (HMAC-SHA256).
//! - [`records`]: validation of the persons / linkages / residents CSV rows.
//! - [`error`]: the domain error type.

pub mod calendar;
pub mod certificate;
pub mod copay;
pub mod error;
pub mod ids;
pub mod my_number;
pub mod person;
pub mod protect;
pub mod records;
mod text;

pub use copay::{CopayRate, IncomeBand};
pub use error::DomainError;
pub use ids::{Branch, InsuredNumber, InsurerNumber, PersonKey, Symbol};
pub use my_number::{LinkedNumber, MyNumber, UncheckedMyNumber};
pub use person::{KanaName, KanjiName, LossReason, PostalCode, Relationship, Sex};
pub use protect::{BlindIndex, Keyring, SealedNumber};
