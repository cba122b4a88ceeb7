//! Domain types and rules of shikaku, the insurer-side eligibility registry for Japanese public
//! health insurance with My Number linkage.
//!
//! Everything here is pure: no file, network or database I/O. Values are validated when built
//! and cannot hold invalid data afterwards. A My Number never appears in `Debug`, `Display`,
//! error messages or panics.
//!
//! It depends on no other crate of the workspace, and every other crate depends on it: a rule
//! written here is the one copy of that rule.
//!
//! - [`calendar`]: the date in Japan, which every date in the registry is.
//! - [`ids`]: 保険者番号, 記号, 番号, 枝番 and the person key.
//! - [`my_number`]: 個人番号 parsing and check digit, with masking types.
//! - [`person`]: sex, relationship, loss reason, postal code, names.
//! - [`kana`]: kana classes, width and script conversions, the matching folds, the search key.
//! - [`matching`]: name and address normalization, item comparison, and the five-item rule
//!   against the resident register (shared by the nightly audit and the registration check).
//! - [`period`]: the qualification period, `[資格取得日, 資格喪失日)`.
//! - [`eligibility`]: where periods put a day, and the validity code a clinic receives.
//! - [`certificate`]: 資格確認書 validity under the insurer's policy and the holder's events,
//!   and the printed items.
//! - [`copay`]: 一部負担金割合 and the legal-age rules behind it.
//! - [`status`]: the states of linkages and certificates, and certificate kinds.
//! - [`finding`]: audit finding kinds, severities, review states and stored comparisons.
//! - [`protect`]: sealing My Numbers (AES-256-GCM) and their blind index (HMAC-SHA256).
//! - [`records`]: validation of the persons / linkages / residents CSV rows.
//! - [`text`]: character classes and small text helpers.
//! - [`error`]: the domain error type.

pub mod benefit;
pub mod calendar;
pub mod certificate;
pub mod copay;
pub mod eligibility;
pub mod ephemeral;
pub mod error;
pub mod evidence;
pub mod finding;
pub mod free_text;
pub mod ids;
pub mod judged;
pub mod kana;
pub mod matching;
pub mod my_number;
pub mod period;
pub mod person;
pub mod protect;
pub mod records;
pub mod status;
pub mod text;

pub use copay::{CopayRate, IncomeBand};
pub use error::DomainError;
pub use finding::{Field, FieldMatch, FindingKind, FindingStatus, ReviewAction, Severity};
pub use ids::{Branch, InsuredNumber, InsurerNumber, PersonKey, Symbol};
pub use my_number::{LinkedNumber, MyNumber, UncheckedMyNumber};
pub use period::Period;
pub use person::{KanaName, KanjiName, LossReason, PostalCode, Relationship, Sex};
pub use protect::{BlindIndex, Keyring, SealedNumber};
pub use records::FileKind;
pub use status::{CertificateKind, CertificateStatus, LinkageStatus};
