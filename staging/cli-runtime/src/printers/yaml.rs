//! YAML as kubectl prints it: JSON turned into YAML the way `sigs.k8s.io/yaml` does
//! through go-yaml v2 — keys in go-yaml's natural order, sequences in mappings not
//! indented, strings quoted only when they would read back as something else, `|`
//! blocks for text with newlines, and long plain strings folded past column 80.
//! Upstream twins: `cli-runtime/pkg/printers/yaml.go`, go-yaml v2's `encode.go`,
//! `resolve.go` and `emitterc.go`.

use serde_json::Value;
use std::cmp::Ordering;

const BEST_WIDTH: usize = 80;
const INDENT: usize = 2;

/// One YAML document for `v` (with a trailing newline).
pub fn to_yaml(v: &Value) -> String {
    let mut e = Emitter::default();
    e.node(v, 0, Context::Root);
    // Nodes end without their line break (a `|` block gives its last one back).
    e.out.push('\n');
    e.out
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Root,
    MappingValue,
    SequenceItem,
}

#[derive(Default)]
struct Emitter {
    out: String,
    column: usize,
}

impl Emitter {
    fn put(&mut self, s: &str) {
        for ch in s.chars() {
            if ch == '\n' {
                self.column = 0;
            } else {
                self.column += 1;
            }
        }
        self.out.push_str(s);
    }

    fn newline_indent(&mut self, indent: usize) {
        self.put("\n");
        self.put(&" ".repeat(indent));
    }

    /// Writes `v`; `indent` is the column nested mapping keys start at.
    fn node(&mut self, v: &Value, indent: usize, ctx: Context) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by(|a, b| natural_cmp(a, b));
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 || ctx == Context::MappingValue {
                        self.newline_indent(indent);
                    }
                    self.key(k);
                    self.put(":");
                    let child = &m[k];
                    match child {
                        Value::Array(a) if !a.is_empty() => {
                            // Sequences in a mapping are not indented.
                            self.node(child, indent, Context::MappingValue);
                        }
                        Value::Object(o) if !o.is_empty() => {
                            self.node(child, indent + INDENT, Context::MappingValue);
                        }
                        _ => {
                            self.put(" ");
                            self.scalar(child, indent + INDENT);
                        }
                    }
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, item) in a.iter().enumerate() {
                    // A nested sequence's first item shares its parent item's line.
                    if i > 0 || ctx == Context::MappingValue {
                        self.newline_indent(indent);
                    }
                    self.put("- ");
                    match item {
                        Value::Object(o) if !o.is_empty() => {
                            self.node(item, indent + INDENT, Context::SequenceItem)
                        }
                        Value::Array(x) if !x.is_empty() => {
                            self.node(item, indent + INDENT, Context::SequenceItem)
                        }
                        _ => self.scalar(item, indent + INDENT),
                    }
                }
            }
            _ => self.scalar(v, indent + INDENT),
        }
    }

    fn key(&mut self, k: &str) {
        let a = analyze(k);
        let style = select_style(k, &a, true);
        self.write_scalar(k, style, false, 0);
    }

    fn scalar(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Null => self.put("null"),
            Value::Bool(b) => self.put(if *b { "true" } else { "false" }),
            Value::Number(n) => self.put(&format_number(n)),
            Value::Object(_) => self.put("{}"),
            Value::Array(_) => self.put("[]"),
            Value::String(s) => {
                let a = analyze(s);
                let style = select_style(s, &a, false);
                self.write_scalar(s, style, true, indent);
            }
        }
    }

    fn write_scalar(&mut self, s: &str, style: Style, breaks: bool, indent: usize) {
        match style {
            Style::Plain => self.write_plain(s, breaks, indent),
            Style::Single => self.write_single(s, breaks, indent),
            Style::Double => self.write_double(s, breaks, indent),
            Style::Literal => self.write_literal(s, indent),
        }
    }

    fn write_plain(&mut self, s: &str, allow_breaks: bool, indent: usize) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.newline_indent(indent);
                } else {
                    self.put_char(c);
                }
                spaces = true;
            } else {
                self.put_char(c);
                spaces = false;
            }
        }
    }

    fn write_single(&mut self, s: &str, allow_breaks: bool, indent: usize) {
        let chars: Vec<char> = s.chars().collect();
        self.put("'");
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                    && !next_space
                {
                    self.newline_indent(indent);
                } else {
                    self.put_char(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.put_char('\'');
                }
                self.put_char(c);
                spaces = false;
            }
        }
        self.put("'");
    }

    fn write_double(&mut self, s: &str, allow_breaks: bool, indent: usize) {
        let chars: Vec<char> = s.chars().collect();
        self.put("\"");
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                let esc = match c {
                    '\0' => "\\0".to_string(),
                    '\x07' => "\\a".into(),
                    '\x08' => "\\b".into(),
                    '\t' => "\\t".into(),
                    '\n' => "\\n".into(),
                    '\x0b' => "\\v".into(),
                    '\x0c' => "\\f".into(),
                    '\r' => "\\r".into(),
                    '\x1b' => "\\e".into(),
                    '"' => "\\\"".into(),
                    '\\' => "\\\\".into(),
                    '\u{85}' => "\\N".into(),
                    '\u{a0}' => "\\_".into(),
                    '\u{2028}' => "\\L".into(),
                    '\u{2029}' => "\\P".into(),
                    c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.put(&esc);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                {
                    self.newline_indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.put("\\");
                    }
                } else {
                    self.put_char(c);
                }
                spaces = true;
            } else {
                self.put_char(c);
                spaces = false;
            }
        }
        self.put("\"");
    }

    fn write_literal(&mut self, s: &str, indent: usize) {
        self.put("|");
        let chars: Vec<char> = s.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.put(&INDENT.to_string());
        }
        match chars.as_slice() {
            [] => self.put("-"),
            [.., last] if !is_break(*last) => self.put("-"),
            [_] => self.put("+"),
            [.., prev, _] if is_break(*prev) => self.put("+"),
            _ => {}
        }
        self.put("\n");
        let mut at_line_start = true;
        for &c in &chars {
            if is_break(c) {
                self.put("\n");
                at_line_start = true;
            } else {
                if at_line_start {
                    self.put(&" ".repeat(indent));
                    at_line_start = false;
                }
                self.put_char(c);
            }
        }
        // The block ends where the text does; the caller's newline follows.
        if self.out.ends_with('\n') {
            self.out.pop();
            self.column = 0;
        }
    }

    fn put_char(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

#[derive(Default)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0a
        || (0x20..=0x7e).contains(&u)
        || u == 0x85
        || (0xa0..=0xd7ff).contains(&u)
        || ((0xe000..=0xfffd).contains(&u) && u != 0xfeff)
        || (0x10000..=0x10ffff).contains(&u)
}

// go-yaml's yaml_emitter_analyze_scalar, for the block (non-flow) context.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let (mut line_breaks, mut special) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars
            .get(i + 1)
            .is_none_or(|&n| n == ' ' || n == '\t' || is_break(n));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == chars.len() {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == chars.len() {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || is_break(c) || c == '\0';
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

// go-yaml's encoder (stringv) picks a style from what the string would resolve to;
// the emitter then falls back when the text does not allow it.
fn select_style(s: &str, a: &Analysis, simple_key: bool) -> Style {
    let can_use_plain = resolves_to_string(s) && !is_base60_float(s);
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if can_use_plain {
        Style::Plain
    } else {
        Style::Double
    };
    if simple_key && a.multiline {
        style = Style::Double;
    }
    if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && simple_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::Double;
    }
    style
}

// go-yaml v2's `resolve`: would this text, unquoted, read back as a string?
fn resolves_to_string(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false; // "" is null
    };
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "~", "null", "Null", "NULL",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    match first {
        'y' | 'Y' | 'n' | 'N' | 't' | 'T' | 'f' | 'F' | 'o' | 'O' | '~' => !SPECIAL.contains(&s),
        '.' => !SPECIAL.contains(&s) && !go_parse_float(s),
        '+' | '-' | '0'..='9' => {
            if SPECIAL.contains(&s) || is_timestamp(s) {
                return false;
            }
            let plain = s.replace('_', "");
            if go_parse_int(&plain) || is_yaml_float(&plain) {
                return false;
            }
            if let Some(bits) = plain
                .strip_prefix("0b")
                .or_else(|| plain.strip_prefix("-0b"))
            {
                return bits.is_empty() || !bits.chars().all(|c| c == '0' || c == '1');
            }
            true
        }
        _ => true,
    }
}

// strconv.ParseInt(s, 0, 64) / ParseUint: sign, then 0x / 0o / 0b / leading-0 octal.
fn go_parse_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() {
        return false;
    }
    let (digits, radix) = if let Some(h) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(o) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (o, 8)
    } else if let Some(b) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (b, 2)
    } else if body.len() > 1 && body.starts_with('0') {
        (&body[1..], 8)
    } else {
        (body, 10)
    };
    !digits.is_empty() && u64::from_str_radix(digits, radix).is_ok()
}

// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

// strconv.ParseFloat accepts more than YAML's pattern (".5", "Inf" …); only "."-led
// text reaches it in go-yaml.
fn go_parse_float(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

// go-yaml v2 reads YYYY-M-D, optionally with a time, as a timestamp.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut parts = date.split('-');
    let (Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let num = |p: &str, max: u32| {
        (1..=2).contains(&p.len())
            && p.bytes().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
    };
    if !num(m, 12) || !num(d, 31) {
        return false;
    }
    let Some(time) = time else { return true };
    // 15:4:5.999999999 then an optional zone (Z, ±hh:mm) — spaces only without a zone.
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, ""),
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (clock, None),
    };
    let fields: Vec<&str> = hms.split(':').collect();
    let ok_field = |f: &str, max: u32| {
        (1..=2).contains(&f.len())
            && f.bytes().all(|c| c.is_ascii_digit())
            && f.parse::<u32>().is_ok_and(|n| n <= max)
    };
    if fields.len() != 3
        || !ok_field(fields[0], 23)
        || !ok_field(fields[1], 59)
        || !ok_field(fields[2], 59)
    {
        return false;
    }
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|c| c.is_ascii_digit())) {
        return false;
    }
    match zone {
        "" | "Z" => true,
        z => {
            let z = &z[1..];
            let b = z.as_bytes();
            b.len() == 5
                && b[2] == b':'
                && z[..2].parse::<u8>().is_ok()
                && z[3..].parse::<u8>().is_ok()
        }
    }
}

// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if frac.is_some_and(|f| !f.bytes().all(|c| c.is_ascii_digit() || c == b'_')) {
        return false;
    }
    let mut parts = main.split(':');
    let head = parts.next().unwrap_or("");
    if !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return false;
    }
    let mut n = 0;
    for p in parts {
        n += 1;
        let b = p.as_bytes();
        let ok = match b.len() {
            1 => b[0].is_ascii_digit(),
            2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    n > 0
}

fn format_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    crate::printers::go_format_float(f)
}

/// go-yaml v2's map key order (`keyList.Less`): runs of digits compare as numbers,
/// and non-letters sort before letters.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_reads_as_kubectl_prints_it() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "creationTimestamp": "2026-12-03T13:00:00Z",
                         "labels": {"app": "web", "tier": "true"}, "annotations": {}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["sleep", "3600"],
                                      "ports": [{"containerPort": 80}]}],
                     "nodeSelector": null},
        });
        assert_eq!(
            to_yaml(&pod),
            "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations: {}\n  creationTimestamp: \"2026-12-03T13:00:00Z\"\n  labels:\n    app: web\n    tier: \"true\"\n  name: p\nspec:\n  containers:\n  - args:\n    - sleep\n    - \"3600\"\n    image: busybox\n    name: c\n    ports:\n    - containerPort: 80\n  nodeSelector: null\n"
        );
    }

    #[test]
    fn strings_are_quoted_only_when_they_would_read_back_otherwise() {
        let cases = [
            ("plain", "plain"),
            ("", "\"\""),
            ("yes", "\"yes\""),
            ("1.5", "\"1.5\""),
            ("0x1F", "\"0x1F\""),
            ("1_000", "\"1_000\""),
            ("1:20", "\"1:20\""),
            ("*", "'*'"),
            ("- a", "'- a'"),
            ("a: b", "'a: b'"),
            ("a #b", "'a #b'"),
            (" lead", "' lead'"),
            ("it's", "it's"),
            ("'q", "'''q'"),
            ("tab\there", "\"tab\\there\""),
            ("a:b", "a:b"),
            ("2026-12-03", "\"2026-12-03\""),
            ("10.0.0.1", "10.0.0.1"),
            ("1Gi", "1Gi"),
            ("-", "'-'"),
            ("~", "\"~\""),
        ];
        for (input, want) in cases {
            assert_eq!(
                to_yaml(&json!({"k": input})),
                format!("k: {want}\n"),
                "{input:?}"
            );
        }
    }

    #[test]
    fn text_with_newlines_is_a_literal_block() {
        assert_eq!(
            to_yaml(&json!({"a": {"k": "x\ny\n"}})),
            "a:\n  k: |\n    x\n    y\n"
        );
        assert_eq!(to_yaml(&json!({"k": "x\n\ny"})), "k: |-\n  x\n\n  y\n");
        assert_eq!(to_yaml(&json!({"k": "x\n\n"})), "k: |+\n  x\n\n");
        assert_eq!(to_yaml(&json!({"k": "x \ny"})), "k: \"x \\ny\"\n");
        assert_eq!(to_yaml(&json!({"k": " x\ny"})), "k: |2-\n   x\n  y\n");
    }

    #[test]
    fn long_plain_strings_fold_past_column_80() {
        let s = "word ".repeat(30);
        let s = s.trim_end();
        let out = to_yaml(&json!({"description": s}));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1, "{out}");
        assert!(lines[1].starts_with("  word"));
        assert!(lines[0].len() <= 84, "{}", lines[0]);
    }

    #[test]
    fn sequences_of_sequences_and_empty_values() {
        assert_eq!(
            to_yaml(&json!({"a": [[1, 2], [], {}], "b": [], "c": {}})),
            "a:\n- - 1\n  - 2\n- []\n- {}\nb: []\nc: {}\n"
        );
    }

    #[test]
    fn keys_sort_in_go_yamls_natural_order() {
        let mut keys = vec!["a10", "a9", "a_b", "aB", "Z", "_x", "b"];
        keys.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(keys, vec!["_x", "Z", "a_b", "a9", "a10", "aB", "b"]);
    }
}
