//! Field selectors (upstream `pkg/fields`): `metadata.name=x,spec.nodeName!=`, matched
//! against the flat field set each resource exposes.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negate: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Parses `a=b`, `a==b`, `a!=b` terms joined by commas; `\` escapes `,`, `=`, `!` and `\`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.is_empty() {
                continue;
            }
            let (field, value, negate) = if let Some(i) = find_unescaped(&term, "!=") {
                (&term[..i], &term[i + 2..], true)
            } else if let Some(i) = find_unescaped(&term, "==") {
                (&term[..i], &term[i + 2..], false)
            } else if let Some(i) = find_unescaped(&term, "=") {
                (&term[..i], &term[i + 1..], false)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                ));
            };
            requirements.push(FieldRequirement {
                field: unescape(field),
                value: unescape(value),
                negate,
            });
        }
        Ok(Self { requirements })
    }

    /// Upstream returns 400 for a field the resource does not support filtering on.
    pub fn check_supported(&self, supported: &dyn Fn(&str) -> bool) -> Result<(), String> {
        for r in &self.requirements {
            if !supported(&r.field) {
                return Err(format!("field label not supported: {}", r.field));
            }
        }
        Ok(())
    }

    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let v = fields.get(&r.field).map(String::as_str).unwrap_or("");
            (v == r.value) != r.negate
        })
    }

    /// The value an equality requirement pins a field to (used to narrow a list by key).
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.negate)
            .map(|r| r.value.as_str())
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.last_mut().unwrap().push(c);
            if let Some(n) = chars.next() {
                out.last_mut().unwrap().push(n);
            }
        } else if c == sep {
            out.push(String::new());
        } else {
            out.last_mut().unwrap().push(c);
        }
    }
    out
}

/// The byte offset of the first `pat` not escaped by a backslash (on byte slices, so a
/// multi-byte character never splits an index).
fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let (bytes, pat) = (s.as_bytes(), pat.as_bytes());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(pat) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_input_is_an_error_or_a_value_never_a_panic() {
        assert!(FieldSelector::parse("é").is_err());
        assert!(FieldSelector::parse("\\é").is_err());
        let f = FieldSelector::parse("metadata.name=é,spec.x!=ü\\,").unwrap();
        assert_eq!(f.requirements[0].value, "é");
        assert!(f.requirements[1].negate);
    }

    #[test]
    fn parse_and_match() {
        let f: BTreeMap<String, String> = [("metadata.name", "a,b"), ("spec.nodeName", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(
            FieldSelector::parse(r"metadata.name=a\,b")
                .unwrap()
                .matches(&f)
        );
        assert!(FieldSelector::parse("spec.nodeName=").unwrap().matches(&f));
        assert!(!FieldSelector::parse("spec.nodeName!=").unwrap().matches(&f));
        assert!(
            FieldSelector::parse("metadata.name==x")
                .unwrap()
                .exact("metadata.name")
                == Some("x")
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
