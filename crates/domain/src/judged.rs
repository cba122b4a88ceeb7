//! What a finding judged, and what changed since a reviewer dismissed it.
//!
//! A dismissal (理由付き疑いなし) is a judgement about particular values: "the register spells
//! the name 髙橋 and the registry 高橋, and that is the same person". It holds while those
//! values hold. When the registry or the register changes one of them, the judgement no longer
//! covers the finding, and the audit re-opens it saying which item changed (docs/audit.md,
//! "Dismissals that expire or re-open").
//!
//! What counts as judged, by kind:
//! - identity and address mismatches: the five items' values on both sides, as compared;
//! - a number shared by several persons: who else holds it (the finding's detail, which names
//!   them and their count);
//! - the other kinds: nothing beyond the finding's identity (kind, person, number), which the
//!   fingerprint already fixes, so they re-open only when their date passes.
//!
//! Comparison keys, verdicts and the probability are left out on purpose: a new variant table
//! or a refitted model changes them without any value changing, and that is not a reason to
//! ask a reviewer again.

use serde::{Deserialize, Serialize};

use crate::finding::{Field, Finding, FindingKind};

/// One item's values on both sides, as a run compared them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgedItem {
    /// Which item.
    pub field: Field,
    /// The registry's value (`None` when absent).
    pub registry: Option<String>,
    /// The register's value (`None` when absent).
    pub register: Option<String>,
}

/// What a finding judged (module docs). Stored with the finding as JSON, and again with a
/// dismissal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judged {
    /// The compared items, for identity and address mismatches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<JudgedItem>,
    /// Who else holds the number, for a shared number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub others: Option<String>,
}

/// One change between a dismissal's judgement and a later run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An item's value changed on the registry side.
    Registry(Field),
    /// An item's value changed on the register side.
    Register(Field),
    /// The persons sharing the number changed.
    Others,
}

impl Change {
    /// The change as the finding's history says it, in Japanese then English.
    pub fn describe(&self) -> String {
        match self {
            Change::Registry(f) => format!("{}（登録簿）/ registry {}", f.label(), f.as_str()),
            Change::Register(f) => format!("{}（住基）/ register {}", f.label(), f.as_str()),
            Change::Others => "番号を共有する者 / the persons sharing the number".to_owned(),
        }
    }
}

impl Judged {
    /// What `finding` judged.
    pub fn of(finding: &Finding) -> Judged {
        let items = finding
            .comparison
            .iter()
            .map(|c| JudgedItem {
                field: c.field,
                registry: c.registry.clone(),
                register: c.register.clone(),
            })
            .collect();
        let others = (finding.kind == FindingKind::NumberShared).then(|| finding.detail.clone());
        Judged { items, others }
    }

    /// What changed from `earlier` (a dismissal's judgement) to `self` (a later run's), item by
    /// item in the order the items are compared; empty when the dismissal still covers it.
    pub fn changes_since(&self, earlier: &Judged) -> Vec<Change> {
        let mut changes = Vec::new();
        for item in &self.items {
            let before = earlier.items.iter().find(|e| e.field == item.field);
            if before.map(|b| &b.registry) != Some(&item.registry) {
                changes.push(Change::Registry(item.field));
            }
            if before.map(|b| &b.register) != Some(&item.register) {
                changes.push(Change::Register(item.field));
            }
        }
        // An item the earlier judgement compared and this run did not is a change as well.
        for gone in earlier
            .items
            .iter()
            .filter(|e| !self.items.iter().any(|i| i.field == e.field))
        {
            changes.push(Change::Registry(gone.field));
        }
        if self.others != earlier.others {
            changes.push(Change::Others);
        }
        changes
    }

    /// The history's reason for re-opening after `changes` (non-empty).
    pub fn reopen_reason(changes: &[Change]) -> String {
        let items: Vec<String> = changes.iter().map(Change::describe).collect();
        format!(
            "疑いなしの判断後に変更あり / changed since the dismissal: {}",
            items.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn item(field: Field, registry: &str, register: &str) -> JudgedItem {
        JudgedItem {
            field,
            registry: Some(registry.to_owned()),
            register: Some(register.to_owned()),
        }
    }

    fn judged(items: Vec<JudgedItem>) -> Judged {
        Judged {
            items,
            others: None,
        }
    }

    #[test]
    fn the_same_values_change_nothing() {
        let a = judged(vec![
            item(Field::NameKanji, "高橋 花子", "髙橋 花子"),
            item(Field::Address, "東京都千代田区1-1", "東京都千代田区1-1"),
        ]);
        assert!(a.changes_since(&a.clone()).is_empty());
    }

    #[test]
    fn a_changed_register_value_is_named_with_its_side() {
        let before = judged(vec![item(Field::NameKanji, "高橋 花子", "髙橋 花子")]);
        let after = judged(vec![item(Field::NameKanji, "高橋 花子", "佐藤 花子")]);
        let changes = after.changes_since(&before);
        assert_eq!(changes, vec![Change::Register(Field::NameKanji)]);
        let reason = Judged::reopen_reason(&changes);
        assert!(reason.contains("漢字氏名（住基）"), "{reason}");
    }

    #[test]
    fn a_value_that_appears_or_disappears_is_a_change() {
        let before = judged(vec![JudgedItem {
            field: Field::Address,
            registry: None,
            register: Some("東京都".into()),
        }]);
        let after = judged(vec![item(Field::Address, "大阪府", "東京都")]);
        assert_eq!(
            after.changes_since(&before),
            vec![Change::Registry(Field::Address)]
        );
        assert_eq!(
            judged(vec![]).changes_since(&before),
            vec![Change::Registry(Field::Address)]
        );
    }

    #[test]
    fn other_holders_of_a_shared_number_are_judged() {
        let before = Judged {
            items: vec![],
            others: Some("also linked to 1 other person(s) (A)".into()),
        };
        let after = Judged {
            items: vec![],
            others: Some("also linked to 2 other person(s) (A, B)".into()),
        };
        assert_eq!(after.changes_since(&before), vec![Change::Others]);
    }

    #[test]
    fn the_stored_form_round_trips_and_omits_what_is_empty() {
        let j = judged(vec![item(Field::BirthDate, "1980-01-02", "1980-01-03")]);
        let v = serde_json::to_value(&j).unwrap();
        assert!(v.get("others").is_none());
        assert_eq!(serde_json::from_value::<Judged>(v).unwrap(), j);
        assert_eq!(
            serde_json::to_value(Judged::default()).unwrap(),
            serde_json::json!({})
        );
    }
}
