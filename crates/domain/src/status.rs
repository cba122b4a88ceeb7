//! The states of the registry's records: linkages and certificates, and how a certificate came
//! to be. Stored as their snake_case names (CHECK constraints in the migrations list the same
//! names); shown on the console by their Japanese labels.

use serde::{Deserialize, Serialize};

/// The state of a My Number linkage (`linkages.status`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LinkageStatus {
    /// In use.
    Active,
    /// Blocked from online viewing until corrected or confirmed; still audited.
    Suspended,
    /// Withdrawn; kept as history and not audited.
    Revoked,
}

impl LinkageStatus {
    /// From `active`, `suspended` or `revoked`.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// `active`, `suspended` or `revoked`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// 有効, 閲覧停止中 or 取消済.
    pub fn label(self) -> &'static str {
        match self {
            LinkageStatus::Active => "有効",
            LinkageStatus::Suspended => "閲覧停止中",
            LinkageStatus::Revoked => "取消済",
        }
    }
}

/// The state of a 資格確認書 (`certificates.status`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CertificateStatus {
    /// Valid (within its dates) and held.
    Active,
    /// Issued ahead of its first valid day: the renewal that follows the active certificate
    /// (at most one per person). It becomes active on its first valid day.
    Pending,
    /// Replaced by a reissue or renewal.
    Superseded,
    /// Void (qualification lost, or revoked at the counter).
    Revoked,
    /// Handed back to the insurer.
    Returned,
    /// Past its 有効期限.
    Expired,
}

impl CertificateStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// 有効, 有効開始前, 再交付により失効, 無効, 返納済 or 期限切れ.
    pub fn label(self) -> &'static str {
        match self {
            CertificateStatus::Active => "有効",
            CertificateStatus::Pending => "有効開始前",
            CertificateStatus::Superseded => "再交付により失効",
            CertificateStatus::Revoked => "無効",
            CertificateStatus::Returned => "返納済",
            CertificateStatus::Expired => "期限切れ",
        }
    }

    /// Only an active or pending certificate may be printed (a renewal is mailed before its
    /// first valid day): a void one must never leave the counter.
    pub fn printable(self) -> bool {
        matches!(self, CertificateStatus::Active | CertificateStatus::Pending)
    }

    /// Whether the certificate is held and in force or about to be: the ones eligibility and
    /// the renewal rule look at (by their dates).
    pub fn current(self) -> bool {
        self.printable()
    }
}

/// How a certificate came to be issued (`certificates.kind`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CertificateKind {
    /// 申請による交付: the person asked (lost card, renewal, 要配慮者).
    Application,
    /// 職権交付: the insurer sends it to someone without a usable マイナ保険証.
    ExOfficio,
    /// 後期高齢者 members get one regardless of card status until 2026-07-31.
    KokiAutomatic,
}

impl CertificateKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// 申請, 職権 or 後期（経過措置）.
    pub fn label(self) -> &'static str {
        match self {
            CertificateKind::Application => "申請",
            CertificateKind::ExOfficio => "職権",
            CertificateKind::KokiAutomatic => "後期（経過措置）",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use strum::VariantArray;

    #[test]
    fn stored_names_round_trip() {
        for s in LinkageStatus::VARIANTS {
            assert_eq!(LinkageStatus::parse(s.as_str()), Some(*s));
        }
        for s in CertificateStatus::VARIANTS {
            assert_eq!(CertificateStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(CertificateKind::ExOfficio.as_str(), "ex_officio");
        assert_eq!(
            "koki_automatic".parse::<CertificateKind>().unwrap(),
            CertificateKind::KokiAutomatic
        );
        assert_eq!(LinkageStatus::parse("gone"), None);
        assert!(CertificateStatus::Active.printable());
        assert!(!CertificateStatus::Revoked.printable());
    }
}
