//! kubectl's JSONPath templates (`-o jsonpath=`, custom columns, `--sort-by`,
//! `wait --for=jsonpath=`): literal text around `{…}` actions with fields, `[i]`,
//! `[a:b:s]`, `[*]`, `..`, `['key']`, unions, `[?(@.x == "y")]` filters and
//! `range`/`end`. Missing keys print nothing, as kubectl allows them. Upstream twin:
//! `client-go/util/jsonpath`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Field(String),
    Wildcard,
    Recursive,
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Index(i64),
    Union(Vec<Vec<Op>>),
    Filter(Box<Filter>),
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Vec<Op>,
    op: Option<String>,
    right: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Expr(Vec<Op>),
    Range(Vec<Op>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut flat = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let mut literal = String::new();
        while i < chars.len() {
            if chars[i] == '{' {
                if !literal.is_empty() {
                    flat.push(Flat::Node(Node::Text(std::mem::take(&mut literal))));
                }
                let end = action_end(&chars, i + 1)
                    .ok_or_else(|| format!("unclosed action in template {text:?}"))?;
                let inside: String = chars[i + 1..end].iter().collect();
                flat.push(parse_action(inside.trim())?);
                i = end + 1;
            } else {
                literal.push(chars[i]);
                i += 1;
            }
        }
        if !literal.is_empty() {
            flat.push(Flat::Node(Node::Text(literal)));
        }
        let mut it = flat.into_iter();
        let nodes = nest(&mut it, false)?;
        Ok(Template { nodes })
    }

    /// The template's output for `data`.
    pub fn execute(&self, data: &Value) -> Result<String, String> {
        let mut out = String::new();
        for group in run(&self.nodes, data)? {
            let texts: Vec<String> = group.iter().map(print_value).collect();
            out.push_str(&texts.join(" "));
        }
        Ok(out)
    }

    /// Every value each top-level action finds, for custom columns and sorting.
    pub fn find(&self, data: &Value) -> Result<Vec<Vec<Value>>, String> {
        run(&self.nodes, data)
    }
}

/// kubectl's `RelaxedJSONPathExpression`: `.a.b`, `a.b` and `{.a.b}` all mean `{.a.b}`.
pub fn relaxed(expr: &str) -> Result<String, String> {
    let e = expr.trim();
    if e.is_empty() {
        return Ok(String::new());
    }
    let inner = match (e.starts_with('{'), e.ends_with('}')) {
        (true, true) => &e[1..e.len() - 1],
        (false, false) => e,
        _ => {
            return Err(
                "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'"
                    .to_string(),
            );
        }
    };
    let inner = inner.strip_prefix('.').unwrap_or(inner);
    Ok(format!("{{.{inner}}}"))
}

enum Flat {
    Node(Node),
    Range(Vec<Op>),
    End,
}

fn nest(it: &mut impl Iterator<Item = Flat>, in_range: bool) -> Result<Vec<Node>, String> {
    let mut nodes = Vec::new();
    while let Some(f) = it.next() {
        match f {
            Flat::Node(n) => nodes.push(n),
            Flat::Range(ops) => {
                let body = nest(it, true)?;
                nodes.push(Node::Range(ops, body));
            }
            Flat::End => {
                if in_range {
                    return Ok(nodes);
                }
                return Err("not in range, nothing to end".into());
            }
        }
    }
    if in_range {
        return Err("unclosed range".into());
    }
    Ok(nodes)
}

fn action_end(chars: &[char], mut i: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(_) if c == '\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '}' => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

fn parse_action(s: &str) -> Result<Flat, String> {
    if s == "end" {
        return Ok(Flat::End);
    }
    if let Some(rest) = s.strip_prefix("range ") {
        return Ok(Flat::Range(parse_path(rest.trim())?));
    }
    Ok(Flat::Node(Node::Expr(parse_path(s)?)))
}

fn parse_path(s: &str) -> Result<Vec<Op>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut ops = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            ' ' | '$' | '@' => i += 1,
            '"' | '\'' => {
                let (text, next) = quoted(&chars, i)?;
                ops.push(Op::Literal(Value::String(text)));
                i = next;
            }
            '.' => {
                if chars.get(i + 1) == Some(&'.') {
                    ops.push(Op::Recursive);
                    i += 2;
                    continue;
                }
                i += 1;
                let (name, next) = field_name(&chars, i);
                i = next;
                if name == "*" {
                    ops.push(Op::Wildcard);
                } else if !name.is_empty() {
                    ops.push(Op::Field(name));
                }
            }
            '[' => {
                let close = bracket_end(&chars, i + 1)
                    .ok_or_else(|| format!("unterminated array in {s:?}"))?;
                let inside: String = chars[i + 1..close].iter().collect();
                ops.push(parse_bracket(inside.trim())?);
                i = close + 1;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let v: Value =
                    serde_json::from_str(&text).map_err(|_| format!("invalid number {text:?}"))?;
                ops.push(Op::Literal(v));
            }
            _ => {
                let (name, next) = field_name(&chars, i);
                if name.is_empty() {
                    return Err(format!("unrecognized character in action: {:?}", chars[i]));
                }
                i = next;
                match name.as_str() {
                    "true" => ops.push(Op::Literal(Value::Bool(true))),
                    "false" => ops.push(Op::Literal(Value::Bool(false))),
                    _ => ops.push(Op::Field(name)),
                }
            }
        }
    }
    Ok(ops)
}

fn field_name(chars: &[char], mut i: usize) -> (String, usize) {
    let mut name = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            name.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if ".[]() ,=!<>~}\"'".contains(c) {
            break;
        }
        name.push(c);
        i += 1;
    }
    (name, i)
}

fn quoted(chars: &[char], i: usize) -> Result<(String, usize), String> {
    let q = chars[i];
    let mut j = i + 1;
    let mut out = String::new();
    while j < chars.len() && chars[j] != q {
        if chars[j] == '\\' && j + 1 < chars.len() {
            j += 1;
            out.push(match chars[j] {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                c => c,
            });
        } else {
            out.push(chars[j]);
        }
        j += 1;
    }
    if j >= chars.len() {
        return Err("unterminated quoted string".into());
    }
    Ok((out, j + 1))
}

fn bracket_end(chars: &[char], mut i: usize) -> Option<usize> {
    let (mut depth, mut quote) = (0, None::<char>);
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '[' => depth += 1,
            None if c == ']' && depth == 0 => return Some(i),
            None if c == ']' => depth -= 1,
            None => {}
        }
        i += 1;
    }
    None
}

fn parse_bracket(s: &str) -> Result<Op, String> {
    if let Some(f) = s.strip_prefix('?') {
        let f = f.trim();
        let inner = f
            .strip_prefix('(')
            .and_then(|f| f.strip_suffix(')'))
            .ok_or_else(|| format!("unclosed filter {s:?}"))?;
        return Ok(Op::Filter(Box::new(parse_filter(inner)?)));
    }
    if s == "*" {
        return Ok(Op::Wildcard);
    }
    let parts = split_top(s, ',');
    if parts.len() > 1 {
        let mut alts = Vec::new();
        for p in parts {
            alts.push(vec![parse_bracket(p.trim())?]);
        }
        return Ok(Op::Union(alts));
    }
    if s.starts_with('\'') || s.starts_with('"') {
        let chars: Vec<char> = s.chars().collect();
        let (key, _) = quoted(&chars, 0)?;
        return Ok(Op::Field(key));
    }
    if s.contains(':') {
        let mut nums = [None, None, None];
        for (k, p) in s.split(':').enumerate().take(3) {
            let p = p.trim();
            if !p.is_empty() {
                nums[k] = Some(
                    p.parse::<i64>()
                        .map_err(|_| format!("invalid array index {p:?}"))?,
                );
            }
        }
        return Ok(Op::Slice(nums[0], nums[1], nums[2]));
    }
    let idx = s
        .parse::<i64>()
        .map_err(|_| format!("invalid array index {s:?}"))?;
    Ok(Op::Index(idx))
}

fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quote) = (0, None::<char>);
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == sep => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            None => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_filter(s: &str) -> Result<Filter, String> {
    for op in ["==", "!=", "<=", ">=", "=~", "<", ">"] {
        if let Some(pos) = find_outside_quotes(s, op) {
            return Ok(Filter {
                left: parse_path(s[..pos].trim())?,
                op: Some(op.to_string()),
                right: parse_path(s[pos + op.len()..].trim())?,
            });
        }
    }
    Ok(Filter {
        left: parse_path(s.trim())?,
        op: None,
        right: Vec::new(),
    })
}

fn find_outside_quotes(s: &str, pat: &str) -> Option<usize> {
    let mut quote = None::<char>;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if s[i..].starts_with(pat) => return Some(i),
            None => {}
        }
    }
    None
}

fn run(nodes: &[Node], data: &Value) -> Result<Vec<Vec<Value>>, String> {
    let mut groups = Vec::new();
    for node in nodes {
        match node {
            Node::Text(t) => groups.push(vec![Value::String(t.clone())]),
            Node::Expr(ops) => groups.push(eval(ops, vec![data.clone()])?),
            Node::Range(ops, body) => {
                for item in eval(ops, vec![data.clone()])? {
                    groups.extend(run(body, &item)?);
                }
            }
        }
    }
    Ok(groups)
}

fn eval(ops: &[Op], mut cur: Vec<Value>) -> Result<Vec<Value>, String> {
    for op in ops {
        cur = step(op, cur)?;
    }
    Ok(cur)
}

fn step(op: &Op, input: Vec<Value>) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    match op {
        Op::Literal(v) => return Ok(input.iter().map(|_| v.clone()).collect()),
        Op::Field(name) => {
            for v in &input {
                if let Some(x) = v.as_object().and_then(|m| m.get(name)) {
                    out.push(x.clone());
                }
            }
        }
        Op::Wildcard => {
            for v in input {
                match v {
                    Value::Object(m) => out.extend(m.into_iter().map(|(_, x)| x)),
                    Value::Array(a) => out.extend(a),
                    _ => {}
                }
            }
        }
        Op::Recursive => {
            for v in &input {
                descend(v, &mut out);
            }
        }
        Op::Index(i) => {
            for v in &input {
                let Some(a) = v.as_array() else {
                    if v.is_null() {
                        continue;
                    }
                    return Err(format!("{} is not array or slice", type_name(v)));
                };
                let len = a.len() as i64;
                let idx = if *i < 0 { i + len } else { *i };
                if idx < 0 || idx >= len {
                    return Err(format!(
                        "array index out of bounds: index {idx}, length {len}"
                    ));
                }
                out.push(a[idx as usize].clone());
            }
        }
        Op::Slice(start, end, stride) => {
            for v in &input {
                let Some(a) = v.as_array() else { continue };
                let len = a.len() as i64;
                let mut s = start.unwrap_or(0);
                if s < 0 {
                    s += len;
                }
                let mut e = end.unwrap_or(len);
                if e < 0 {
                    e += len;
                }
                if s == e {
                    continue;
                }
                if s < 0 || s >= len {
                    return Err(format!(
                        "array index out of bounds: index {s}, length {len}"
                    ));
                }
                if e < 0 || e > len {
                    return Err(format!(
                        "array index out of bounds: index {}, length {len}",
                        e - 1
                    ));
                }
                if s > e {
                    return Err(format!(
                        "starting index {s} is greater than ending index {e}"
                    ));
                }
                let st = stride.unwrap_or(1);
                if st <= 0 {
                    return Err("step must be > 0".into());
                }
                out.extend(
                    a[s as usize..e as usize]
                        .iter()
                        .step_by(st as usize)
                        .cloned(),
                );
            }
        }
        Op::Union(alts) => {
            for alt in alts {
                out.extend(eval(alt, input.clone())?);
            }
        }
        Op::Filter(f) => {
            for v in &input {
                let Some(a) = v.as_array() else {
                    return Err(format!(
                        "{} is not array or slice and cannot be filtered",
                        type_name(v)
                    ));
                };
                for item in a {
                    let lefts = eval(&f.left, vec![item.clone()]).unwrap_or_default();
                    let Some(op) = &f.op else {
                        if !lefts.is_empty() {
                            out.push(item.clone());
                        }
                        continue;
                    };
                    let rights = eval(&f.right, vec![item.clone()])?;
                    if lefts.len() > 1 || rights.len() > 1 {
                        return Err("can only compare one element at a time".into());
                    }
                    let (Some(l), Some(r)) = (lefts.first(), rights.first()) else {
                        continue;
                    };
                    if compare(l, op, r)? {
                        out.push(item.clone());
                    }
                }
            }
        }
    }
    Ok(out)
}

fn descend(v: &Value, out: &mut Vec<Value>) {
    let children: Vec<&Value> = match v {
        Value::Object(m) => m.values().collect(),
        Value::Array(a) => a.iter().collect(),
        _ => return,
    };
    if children.is_empty() {
        return;
    }
    out.push(v.clone());
    for c in children {
        descend(c, out);
    }
}

fn compare(l: &Value, op: &str, r: &Value) -> Result<bool, String> {
    use std::cmp::Ordering;
    if op == "=~" {
        let (Some(text), Some(_pattern)) = (l.as_str(), r.as_str()) else {
            return Err("regexp search only support string".into());
        };
        return Err(format!(
            "regular expression filters are not supported ({text:?})"
        ));
    }
    let ord = match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) if op == "==" || op == "!=" => Some(a.cmp(b)),
        _ if op == "==" => return Ok(false),
        _ if op == "!=" => return Ok(true),
        _ => return Err("incompatible types for comparison".to_string()),
    };
    let Some(ord) = ord else { return Ok(false) };
    Ok(match op {
        "==" => ord == Ordering::Equal,
        "!=" => ord != Ordering::Equal,
        "<" => ord == Ordering::Less,
        ">" => ord == Ordering::Greater,
        "<=" => ord != Ordering::Greater,
        ">=" => ord != Ordering::Less,
        _ => return Err(format!("unrecognized filter operator {op}")),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "map[string]interface {}",
        Value::String(_) => "string",
        Value::Number(_) => "float64",
        Value::Bool(_) => "bool",
        _ => "interface {}",
    }
}

/// A found value as text: strings bare, maps and lists as JSON, numbers as Go prints them.
pub fn print_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                n.to_string()
            } else {
                super::go_format_float(n.as_f64().unwrap_or_default())
            }
        }
        Value::Object(_) | Value::Array(_) => super::to_compact_json(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exec(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().execute(v).unwrap()
    }

    #[test]
    fn fields_lists_ranges_and_filters() {
        let list = json!({"items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        ]});
        assert_eq!(exec("{.items[*].metadata.name}", &list), "a b");
        assert_eq!(
            exec("{range .items[*]}{.metadata.name}{\"\\n\"}{end}", &list),
            "a\nb\n"
        );
        assert_eq!(
            exec(
                "{.items[0].metadata.labels.app\\.kubernetes\\.io/name}",
                &list
            ),
            "x"
        );
        assert_eq!(
            exec(
                "{.items[0].metadata.labels['app.kubernetes.io/name']}",
                &list
            ),
            "x"
        );
        assert_eq!(
            exec(
                "{.items[?(@.status.conditions[0].status==\"False\")].metadata.name}",
                &list
            ),
            "b"
        );
        assert_eq!(exec("{.items[-1:].metadata.name}", &list), "b");
        assert_eq!(exec("name: {.items[0].metadata.name}!", &list), "name: a!");
        assert_eq!(exec("{.items[0].missing}", &list), "");
        assert_eq!(
            exec("{.items[0].metadata.labels}", &list),
            "{\"app.kubernetes.io/name\":\"x\"}"
        );
        assert_eq!(exec("{..name}", &json!({"a": {"name": "n"}})), "n");
    }

    #[test]
    fn out_of_range_is_an_error() {
        let t = Template::parse("{.items[3]}").unwrap();
        assert!(
            t.execute(&json!({"items": []}))
                .unwrap_err()
                .contains("out of bounds")
        );
        assert!(Template::parse("{end}").is_err());
    }

    #[test]
    fn relaxed_paths() {
        assert_eq!(relaxed("metadata.name").unwrap(), "{.metadata.name}");
        assert_eq!(relaxed("{.metadata.name}").unwrap(), "{.metadata.name}");
        assert_eq!(relaxed(".spec").unwrap(), "{.spec}");
    }
}
