//! `-o go-template`: Go's `text/template` over the object's JSON, with kubectl's extra
//! functions `exists` and `base64decode`. Upstream twin:
//! `cli-runtime/pkg/printers/template.go` (`GoTemplatePrinter`), which executes Go's
//! `text/template`; this is our own engine for the same language: actions with `{{-`/`-}}`
//! trimming, comments, fields and variables, pipelines, parenthesised arguments,
//! `if`/`else if`/`range`/`with`/`else`/`break`/`continue`, and the builtin functions
//! (`and or not len index slice print printf println eq ne lt le gt ge html js urlquery`).
//! The data is the object as apimachinery's JSON decoding leaves it: whole numbers are
//! int64, others float64 (and Go compares only numbers of one kind).

use serde_json::Value;

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
    src: String,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Pipeline {
    /// `$x :=` / `$i, $e :=` (declare) or `$x =` (assign).
    vars: Vec<String>,
    declare: bool,
    cmds: Vec<Cmd>,
}

/// Where a node is and how Go prints it in an execution error (`at <...>`).
#[derive(Debug, Clone, Default)]
struct Ctx {
    pos: usize,
    text: String,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Arg>,
    ctx: Ctx,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.a.b` on dot (empty path = dot itself).
    Field(Vec<String>, Ctx),
    /// `$x.a.b`.
    Var(String, Vec<String>, Ctx),
    Func(String),
    Lit(Value),
    Nil,
    /// `(pipeline).a.b`.
    Sub(Box<Pipeline>, Vec<String>, Ctx),
}

// ---- lexing: text and actions ----

enum Piece {
    Text(String),
    /// The action's text and its byte offset in the template.
    Action(String, usize),
}

fn split(src: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut line = 1;
    while let Some(start) = rest.find("{{") {
        let base = src.len() - rest.len();
        let mut text = rest[..start].to_string();
        let mut body = &rest[start + 2..];
        let mut offset = base + start + 2;
        if body.starts_with("- ") || body.starts_with("-\t") || body.starts_with("-\n") {
            text = text.trim_end().to_string();
            body = &body[1..];
            offset += 1;
        }
        line += text.matches('\n').count();
        out.push(Piece::Text(text));
        // The action ends at the first `}}` outside a string literal.
        let end =
            action_end(body).ok_or_else(|| format!("template: output:{line}: unclosed action"))?;
        let mut action = &body[..end];
        let mut after = &body[end + 2..];
        if action.ends_with(" -") || action.ends_with("\t-") || action.ends_with("\n-") {
            action = &action[..action.len() - 1];
            after = after.trim_start();
        }
        line += action.matches('\n').count();
        let lead = action.len() - action.trim_start().len();
        out.push(Piece::Action(action.trim().to_string(), offset + lead));
        rest = after;
    }
    out.push(Piece::Text(rest.to_string()));
    Ok(out)
}

fn action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

// ---- tokens within an action ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    Var(String),
    Ident(String),
    Str(String),
    Num(Value),
    Dot,
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

/// A token, where it starts (byte offset in the template) and whether white space
/// comes before it (`.a .b` are two operands, `.a.b` one chain).
#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    spaced: bool,
}

fn tokenize(s: &str, base: usize) -> Result<Vec<Token>, String> {
    let c: Vec<char> = s.chars().collect();
    // Byte offsets of each char.
    let offs: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    let mut toks: Vec<Tok> = Vec::new();
    let mut starts: Vec<(usize, bool)> = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut spaced = true;
    while i < c.len() {
        let ch = c[i];
        if !matches!(ch, ' ' | '\t' | '\n' | '\r') {
            starts.push((base + offs[i], spaced));
        }
        spaced = matches!(ch, ' ' | '\t' | '\n' | '\r');
        let out = &mut toks;
        match ch {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' if c.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' && i + 1 < c.len() {
                        i += 1;
                        s.push(match c[i] {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            other => other,
                        });
                    } else {
                        s.push(c[i]);
                    }
                    i += 1;
                }
                if i >= c.len() {
                    return Err("unterminated quoted string".into());
                }
                i += 1;
                out.push(Tok::Str(s));
            }
            '`' => {
                let start = i + 1;
                i += 1;
                while i < c.len() && c[i] != '`' {
                    i += 1;
                }
                if i >= c.len() {
                    return Err("unterminated raw quoted string".into());
                }
                out.push(Tok::Str(c[start..i].iter().collect()));
                i += 1;
            }
            '.' => {
                let start = i + 1;
                i += 1;
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
                if i == start {
                    out.push(Tok::Dot);
                } else {
                    out.push(Tok::Field(c[start..i].iter().collect()));
                }
            }
            '$' => {
                let start = i;
                i += 1;
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
                out.push(Tok::Var(c[start..i].iter().collect()));
            }
            d if d.is_ascii_digit()
                || (d == '-' && c.get(i + 1).is_some_and(|n| n.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.' || c[i] == '_') {
                    i += 1;
                }
                let text: String = c[start..i].iter().collect();
                let clean = text.replace('_', "");
                let n = match clean.parse::<i64>() {
                    Ok(int) => Value::from(int),
                    Err(_) => clean
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .ok_or_else(|| format!("bad number syntax: {text:?}"))?,
                };
                out.push(Tok::Num(n));
            }
            a if ident(a) => {
                let start = i;
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(c[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(toks
        .into_iter()
        .zip(starts)
        .map(|(tok, (pos, spaced))| Token { tok, pos, spaced })
        .collect())
}

// ---- parsing ----

const FUNCS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "exists",
    "base64decode",
    "call",
];

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    src: &'a str,
    /// Where the action's text ends in `src`.
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    /// The source from token `from` up to the current one, white space collapsed.
    fn text_since(&self, from: usize) -> String {
        let start = self.toks[from].pos;
        let end = self.toks.get(self.pos).map(|t| t.pos).unwrap_or(self.end);
        let raw = self.src.get(start..end).unwrap_or_default().trim_end();
        let raw = raw.trim_end_matches(['|', ')', '}']).trim_end();
        raw.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Go places a field chain at its second element.
    fn chain_pos(&self, first: usize) -> usize {
        if self.pos > first + 1 {
            self.toks[first + 1].pos
        } else {
            self.toks[first].pos
        }
    }

    fn pipeline(&mut self, allow_decl: bool) -> Result<Pipeline, String> {
        let mut vars = Vec::new();
        let mut declare = false;
        // `$x :=`, `$i, $e :=`, `$x =`
        let save = self.pos;
        if allow_decl && let Some(Tok::Var(v)) = self.peek().cloned() {
            self.pos += 1;
            let mut names = vec![v];
            if self.peek() == Some(&Tok::Comma)
                && let Some(Tok::Var(v2)) = self.toks.get(self.pos + 1).map(|t| t.tok.clone())
            {
                self.pos += 2;
                names.push(v2);
            }
            match self.peek() {
                Some(Tok::Declare) => {
                    self.pos += 1;
                    vars = names;
                    declare = true;
                }
                Some(Tok::Assign) => {
                    self.pos += 1;
                    vars = names;
                }
                _ => self.pos = save,
            }
        }
        let mut cmds = Vec::new();
        loop {
            let mut args = Vec::new();
            let first = self.pos;
            while let Some(t) = self.peek().cloned() {
                if t == Tok::Pipe || t == Tok::Close {
                    break;
                }
                args.push(self.operand()?);
            }
            if args.is_empty() {
                return Err("missing value for command".into());
            }
            let ctx = Ctx {
                pos: self.toks[first].pos,
                text: self.text_since(first),
            };
            cmds.push(Cmd { args, ctx });
            if self.peek() == Some(&Tok::Pipe) {
                self.pos += 1;
                continue;
            }
            break;
        }
        Ok(Pipeline {
            vars,
            declare,
            cmds,
        })
    }

    /// Fields chained without white space (`.b.c` after an operand).
    fn fields(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(t) = self.toks.get(self.pos) {
            match &t.tok {
                Tok::Field(f) if !t.spaced => {
                    out.push(f.clone());
                    self.pos += 1;
                }
                _ => break,
            }
        }
        out
    }

    fn ctx(&self, first: usize) -> Ctx {
        Ctx {
            pos: self.chain_pos(first),
            text: self.text_since(first),
        }
    }

    fn operand(&mut self) -> Result<Arg, String> {
        let first = self.pos;
        let t = self.peek().cloned().ok_or("unexpected end of command")?;
        self.pos += 1;
        Ok(match t {
            Tok::Dot => Arg::Field(Vec::new(), self.ctx(first)),
            Tok::Field(f) => {
                let mut path = vec![f];
                path.extend(self.fields());
                Arg::Field(path, self.ctx(first))
            }
            Tok::Var(v) => {
                let path = self.fields();
                Arg::Var(v, path, self.ctx(first))
            }
            Tok::Str(s) => Arg::Lit(Value::String(s)),
            Tok::Num(n) => Arg::Lit(n),
            Tok::Ident(i) => match i.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Nil,
                f if FUNCS.contains(&f) => Arg::Func(i),
                _ => return Err(format!("function {i:?} not defined")),
            },
            Tok::Open => {
                let p = self.pipeline(true)?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("unclosed left paren".into());
                }
                self.pos += 1;
                let path = self.fields();
                Arg::Sub(Box::new(p), path, self.ctx(first))
            }
            other => return Err(format!("unexpected {other:?} in operand")),
        })
    }
}

fn parse_pipeline(
    template: &str,
    action: &str,
    offset: usize,
    allow_decl: bool,
) -> Result<Pipeline, String> {
    let mut p = Parser {
        toks: tokenize(action, offset)?,
        pos: 0,
        src: template,
        end: offset + action.len(),
    };
    let pipe = p.pipeline(allow_decl)?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?} in command", p.toks[p.pos].tok));
    }
    Ok(pipe)
}

/// What ended a list of nodes.
enum ListEnd {
    Eof,
    Close,
    Else(String, usize),
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let pieces = split(src)?;
        let mut it = pieces.into_iter().peekable();
        let (nodes, end) = parse_list(src, &mut it)?;
        let line = src.lines().count().max(1);
        match end {
            ListEnd::Eof => Ok(Template {
                nodes,
                src: src.to_string(),
            }),
            ListEnd::Close => Err(format!("template: output:{line}: unexpected {{{{end}}}}")),
            ListEnd::Else(..) => Err(format!("template: output:{line}: unexpected {{{{else}}}}")),
        }
    }

    /// Renders the template with `data` as dot.
    pub fn execute(&self, data: &Value) -> Result<String, String> {
        let data = data.clone();
        let mut st = State {
            out: String::new(),
            vars: vec![("$".to_string(), data.clone())],
        };
        match exec_list(&self.nodes, &data, &mut st) {
            Ok(_) => Ok(st.out),
            Err(ExecError { ctx, message }) => {
                let before = &self.src[..ctx.pos.min(self.src.len())];
                let line = before.matches('\n').count() + 1;
                let col = ctx.pos - before.rfind('\n').map_or(0, |i| i + 1);
                Err(format!(
                    "template: output:{line}:{col}: executing \"output\" at <{}>: {message}",
                    ctx.text
                ))
            }
        }
    }
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<Piece>>;

fn parse_list(src: &str, it: &mut Pieces) -> Result<(Vec<Node>, ListEnd), String> {
    let mut nodes = Vec::new();
    while let Some(p) = it.next() {
        let (a, offset) = match p {
            Piece::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
                continue;
            }
            Piece::Action(a, offset) => (a, offset),
        };
        let line = src[..offset.min(src.len())].matches('\n').count() + 1;
        if a.starts_with("/*") {
            if !a.ends_with("*/") {
                return Err("template: output: unclosed comment".into());
            }
            continue;
        }
        let (word, rest) = match a.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (a.as_str(), ""),
        };
        let rest_offset = offset + (a.len() - rest.len());
        let err = |e: String| format!("template: output:{line}: {e}");
        match word {
            "end" => return Ok((nodes, ListEnd::Close)),
            "else" => return Ok((nodes, ListEnd::Else(rest.to_string(), rest_offset))),
            "break" => nodes.push(Node::Break),
            "continue" => nodes.push(Node::Continue),
            "if" | "with" | "range" => {
                let pipe = parse_pipeline(src, rest, rest_offset, true).map_err(err)?;
                let node = parse_control(src, word, pipe, it)?;
                nodes.push(node);
            }
            "define" | "template" | "block" => {
                return Err(format!(
                    "template: output:{line}: {{{{{word}}}}} is not supported by this kubectl's go-template printer"
                ));
            }
            _ => nodes.push(Node::Action(
                parse_pipeline(src, &a, offset, true).map_err(err)?,
            )),
        }
    }
    Ok((nodes, ListEnd::Eof))
}

fn parse_control(src: &str, word: &str, pipe: Pipeline, it: &mut Pieces) -> Result<Node, String> {
    let (body, end) = parse_list(src, it)?;
    let line = src.lines().count().max(1);
    let otherwise = match end {
        ListEnd::Eof => return Err(format!("template: output:{line}: unexpected EOF")),
        ListEnd::Close => Vec::new(),
        ListEnd::Else(rest, _) if rest.is_empty() => {
            let (e, end) = parse_list(src, it)?;
            if !matches!(end, ListEnd::Close) {
                return Err(format!(
                    "template: output:{line}: expected end; found {{{{else}}}}"
                ));
            }
            e
        }
        // `else if ...` / `else with ...`: a nested control that shares our end.
        ListEnd::Else(rest, offset) => {
            let (w, r) = rest
                .split_once(char::is_whitespace)
                .unwrap_or((rest.as_str(), ""));
            if w != "if" && w != "with" {
                return Err(format!(
                    "template: output:{line}: unexpected {rest:?} in else"
                ));
            }
            let r_offset = offset + (rest.len() - r.trim().len());
            let inner = parse_pipeline(src, r.trim(), r_offset, true)
                .map_err(|e| format!("template: output:{line}: {e}"))?;
            vec![parse_control(src, w, inner, it)?]
        }
    };
    Ok(match word {
        "if" => Node::If(pipe, body, otherwise),
        "with" => Node::With(pipe, body, otherwise),
        _ => Node::Range(pipe, body, otherwise),
    })
}

// ---- execution ----

struct State {
    out: String,
    vars: Vec<(String, Value)>,
}

/// An execution failure and the node it happened at.
struct ExecError {
    ctx: Ctx,
    message: String,
}

type Exec<T> = Result<T, ExecError>;

fn at(ctx: &Ctx, message: impl Into<String>) -> ExecError {
    ExecError {
        ctx: ctx.clone(),
        message: message.into(),
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

fn exec_list(nodes: &[Node], dot: &Value, st: &mut State) -> Exec<Flow> {
    for n in nodes {
        match exec_node(n, dot, st)? {
            Flow::Normal => {}
            other => return Ok(other),
        }
    }
    Ok(Flow::Normal)
}

fn exec_node(n: &Node, dot: &Value, st: &mut State) -> Exec<Flow> {
    match n {
        Node::Text(t) => st.out.push_str(t),
        Node::Action(p) => {
            let v = eval_pipeline(p, dot, st)?;
            if p.vars.is_empty() {
                st.out.push_str(&go_print(&v));
            }
        }
        Node::Break => return Ok(Flow::Break),
        Node::Continue => return Ok(Flow::Continue),
        Node::If(p, body, otherwise) | Node::With(p, body, otherwise) => {
            let mark = st.vars.len();
            let v = eval_pipeline(p, dot, st)?;
            let is_with = matches!(n, Node::With(..));
            let flow = if truthy(&v) {
                exec_list(body, if is_with { &v } else { dot }, st)?
            } else {
                exec_list(otherwise, dot, st)?
            };
            st.vars.truncate(mark);
            return Ok(flow);
        }
        Node::Range(p, body, otherwise) => {
            let mark = st.vars.len();
            let plain = Pipeline {
                vars: Vec::new(),
                declare: false,
                cmds: p.cmds.clone(),
            };
            let v = eval_pipeline(&plain, dot, st)?;
            let items: Vec<(Value, Value)> = match &v {
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (Value::from(i as i64), x.clone()))
                    .collect(),
                Value::Object(m) => {
                    let mut keys: Vec<&String> = m.keys().collect();
                    keys.sort();
                    keys.into_iter()
                        .map(|k| (Value::String(k.clone()), m[k].clone()))
                        .collect()
                }
                Value::Null => Vec::new(),
                Value::Number(n) if !n.is_f64() => (0..n.as_i64().unwrap_or(0).max(0))
                    .map(|i| (Value::from(i), Value::from(i)))
                    .collect(),
                other => {
                    let ctx = p.cmds.first().map(|c| c.ctx.clone()).unwrap_or_default();
                    return Err(at(
                        &ctx,
                        format!("range can't iterate over {}", go_print(other)),
                    ));
                }
            };
            if items.is_empty() {
                exec_list(otherwise, dot, st)?;
            }
            for (k, x) in items {
                let inner = st.vars.len();
                match p.vars.len() {
                    0 => {}
                    1 => st.vars.push((p.vars[0].clone(), x.clone())),
                    _ => {
                        st.vars.push((p.vars[0].clone(), k));
                        st.vars.push((p.vars[1].clone(), x.clone()));
                    }
                }
                let flow = exec_list(body, &x, st)?;
                st.vars.truncate(inner);
                if matches!(flow, Flow::Break) {
                    break;
                }
            }
            st.vars.truncate(mark);
        }
    }
    Ok(Flow::Normal)
}

fn lookup_var(st: &State, name: &str, ctx: &Ctx) -> Exec<Value> {
    st.vars
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| at(ctx, format!("undefined variable: {name}")))
}

fn eval_pipeline(p: &Pipeline, dot: &Value, st: &mut State) -> Exec<Value> {
    let mut prev: Option<Value> = None;
    for cmd in &p.cmds {
        prev = Some(eval_command(cmd, dot, st, prev)?);
    }
    let v = prev.unwrap_or(Value::Null);
    if let Some(name) = p.vars.last() {
        if p.declare {
            st.vars.push((name.clone(), v.clone()));
        } else if let Some(slot) = st.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v.clone();
        } else {
            let ctx = p.cmds.first().map(|c| c.ctx.clone()).unwrap_or_default();
            return Err(at(&ctx, format!("undefined variable: {name}")));
        }
    }
    Ok(v)
}

/// Follows fields through maps; a missing key is nil (printed `<no value>`), and
/// fields of anything but a map fail as Go's do on an `interface {}`.
fn walk(mut v: Value, path: &[String], ctx: &Ctx, top: bool) -> Exec<Value> {
    for (i, f) in path.iter().enumerate() {
        v = match v {
            Value::Object(mut m) => m.remove(f).unwrap_or(Value::Null),
            // A missing key is nothing, and so are its fields.
            Value::Null => Value::Null,
            other => {
                let ty = if top && i == 0 {
                    go_type(&other)
                } else {
                    "interface {}"
                };
                return Err(at(ctx, format!("can't evaluate field {f} in type {ty}")));
            }
        };
    }
    Ok(v)
}

fn eval_arg(a: &Arg, dot: &Value, st: &mut State) -> Exec<Value> {
    match a {
        Arg::Field(path, ctx) => walk(dot.clone(), path, ctx, false),
        Arg::Var(name, path, ctx) => walk(lookup_var(st, name, ctx)?, path, ctx, false),
        Arg::Lit(v) => Ok(v.clone()),
        Arg::Nil => Ok(Value::Null),
        Arg::Sub(p, path, ctx) => {
            let v = eval_pipeline(p, dot, st)?;
            walk(v, path, ctx, false)
        }
        Arg::Func(f) => call(f, Vec::new()).map_err(|m| at(&Ctx::default(), m)),
    }
}

fn eval_command(cmd: &Cmd, dot: &Value, st: &mut State, piped: Option<Value>) -> Exec<Value> {
    let ctx = &cmd.ctx;
    match &cmd.args[0] {
        Arg::Func(f) => {
            // `and`/`or` evaluate their operands lazily.
            if f == "and" || f == "or" {
                let rest = &cmd.args[1..];
                if rest.is_empty() && piped.is_none() {
                    return Err(at(
                        ctx,
                        format!("wrong number of args for {f}: want at least 1 got 0"),
                    ));
                }
                let mut last = Value::Null;
                for a in rest {
                    last = eval_arg(a, dot, st)?;
                    if truthy(&last) != (f == "and") {
                        return Ok(last);
                    }
                }
                if let Some(p) = piped {
                    last = p;
                }
                return Ok(last);
            }
            let mut args = Vec::new();
            for a in &cmd.args[1..] {
                args.push(eval_arg(a, dot, st)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            call(f, args).map_err(|m| at(ctx, m))
        }
        first => {
            if cmd.args.len() > 1 || piped.is_some() {
                let name = match first {
                    Arg::Field(p, _) => format!(".{}", p.join(".")),
                    Arg::Var(n, _, _) => n.clone(),
                    _ => "value".into(),
                };
                return Err(at(
                    ctx,
                    format!("can't give argument to non-function {name}"),
                ));
            }
            eval_arg(first, dot, st)
        }
    }
}

fn call(f: &str, args: Vec<Value>) -> Result<Value, String> {
    let want = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {f}: want {n} got {}",
                args.len()
            ))
        }
    };
    Ok(match f {
        "not" => {
            want(1)?;
            Value::Bool(!truthy(&args[0]))
        }
        "len" => {
            want(1)?;
            let n = match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                other => return Err(format!("error calling len: len of type {}", go_type(other))),
            };
            Value::from(n as i64)
        }
        "index" => {
            let mut it = args.into_iter();
            let mut v = it
                .next()
                .ok_or("wrong number of args for index: want at least 1 got 0")?;
            for k in it {
                v = match (&v, &k) {
                    (Value::Object(m), Value::String(s)) => {
                        m.get(s).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(a), Value::Number(n)) if !n.is_f64() => {
                        let i = n.as_i64().unwrap_or(-1);
                        if i < 0 || i as usize >= a.len() {
                            return Err(format!("error calling index: index out of range: {i}"));
                        }
                        a[i as usize].clone()
                    }
                    (Value::Null, _) => {
                        return Err("error calling index: index of untyped nil".into());
                    }
                    _ => {
                        return Err(format!(
                            "error calling index: cannot index slice/array with type {}",
                            go_type(&k)
                        ));
                    }
                };
            }
            v
        }
        "slice" => {
            let mut it = args.into_iter();
            let v = it.next().ok_or("wrong number of args for slice")?;
            let idx: Vec<usize> = it.map(|x| x.as_f64().unwrap_or(0.0) as usize).collect();
            match v {
                Value::String(s) => {
                    let (a, b) = (
                        idx.first().copied().unwrap_or(0),
                        idx.get(1).copied().unwrap_or(s.len()),
                    );
                    Value::String(
                        s.get(a..b)
                            .ok_or("error calling slice: index out of range")?
                            .to_string(),
                    )
                }
                Value::Array(l) => {
                    let (a, b) = (
                        idx.first().copied().unwrap_or(0),
                        idx.get(1).copied().unwrap_or(l.len()),
                    );
                    Value::Array(
                        l.get(a..b)
                            .ok_or("error calling slice: index out of range")?
                            .to_vec(),
                    )
                }
                other => {
                    return Err(format!(
                        "error calling slice: can't slice item of type {}",
                        go_type(&other)
                    ));
                }
            }
        }
        "print" => Value::String(go_sprint(&args)),
        "println" => Value::String(args.iter().map(go_print).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            let mut it = args.into_iter();
            let format = match it.next() {
                Some(Value::String(s)) => s,
                _ => return Err("wrong number of args for printf: want at least 1 got 0".into()),
            };
            Value::String(go_sprintf(&format, &it.collect::<Vec<_>>()))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            let mut any = false;
            for x in &args[1..] {
                any |= go_compare(&args[0], x).map_err(|e| format!("error calling eq: {e}"))?
                    == std::cmp::Ordering::Equal;
            }
            Value::Bool(any)
        }
        "ne" => {
            want(2)?;
            let o = go_compare(&args[0], &args[1]).map_err(|e| format!("error calling ne: {e}"))?;
            Value::Bool(o != std::cmp::Ordering::Equal)
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            if matches!(
                (&args[0], &args[1]),
                (Value::Bool(_), _) | (_, Value::Bool(_))
            ) {
                return Err(format!("error calling {f}: invalid type for comparison"));
            }
            let ord =
                go_compare(&args[0], &args[1]).map_err(|e| format!("error calling {f}: {e}"))?;
            Value::Bool(match f {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        "html" => Value::String(
            go_sprint(&args)
                .replace('&', "&amp;")
                .replace('\'', "&#39;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;"),
        ),
        "js" => Value::String(
            go_sprint(&args)
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('"', "\\\"")
                .replace('<', "\\u003C")
                .replace('>', "\\u003E"),
        ),
        "urlquery" => Value::String(crate::discovery::query_escape(&go_sprint(&args))),
        // kubectl's own functions.
        "exists" => {
            let mut it = args.into_iter();
            let mut v = it.next().unwrap_or(Value::Null);
            let mut found = true;
            for k in it {
                let next = match (&v, k) {
                    (Value::Object(m), Value::String(s)) => m.get(&s).cloned(),
                    (Value::Array(a), Value::Number(n)) => {
                        a.get(n.as_f64().unwrap_or(-1.0) as usize).cloned()
                    }
                    _ => None,
                };
                match next {
                    Some(n) => v = n,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            Value::Bool(found)
        }
        "base64decode" => {
            want(1)?;
            use base64::Engine;
            let s = args[0].as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| {
                    format!("error calling base64decode: {s} is not a valid base64 string: {e}")
                })?;
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        }
        "call" => return Err("error calling call: non-function".into()),
        _ => return Err(format!("function {f:?} not defined")),
    })
}

/// Go templates' truth: empty strings, maps, lists, zero and nil are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Go's template comparison: same basic kind only (integers with integers, floats
/// with floats, strings, bools); nil equals only nil.
fn go_compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() == y.is_f64() => {
            if x.is_f64() {
                x.as_f64()
                    .partial_cmp(&y.as_f64())
                    .ok_or_else(|| "invalid comparison".to_string())
            } else {
                Ok(x.as_i64().cmp(&y.as_i64()))
            }
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Null, Value::Null) => Ok(Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) => Ok(Ordering::Less),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            Err("non-comparable type".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `%v` of a decoded JSON value.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_print_inner).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_print_inner(&m[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// Inside a map or slice nil prints as `<nil>`.
fn go_print_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => go_print(other),
    }
}

/// `%v` of a float64: Go's shortest `%g`, with an exponent below 1e-4 or from 1e6.
pub fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Shortest round-trip digits and the decimal exponent.
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

fn go_sprint(args: &[Value]) -> String {
    // Spaces go between operands when neither is a string.
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_print_inner(a));
    }
    out
}

/// `fmt.Sprintf` for the verbs templates use: `%s %v %d %q %t %f %x %%`, with widths,
/// `-` and `0` flags and precision.
fn go_sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    let mut next = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = it.peek() {
            if "-+0 #".contains(f) {
                flags.push(f);
                it.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            it.next();
        }
        let mut precision: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            let mut p = String::new();
            while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                it.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let text = match (verb, arg) {
            ('d', Value::Number(n)) => format!("{}", n.as_f64().unwrap_or(0.0) as i64),
            ('f' | 'F', Value::Number(n)) => {
                format!("{:.*}", precision.unwrap_or(6), n.as_f64().unwrap_or(0.0))
            }
            ('x', Value::Number(n)) => format!("{:x}", n.as_f64().unwrap_or(0.0) as i64),
            ('x', Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('q', Value::String(s)) => format!("{s:?}"),
            ('t', Value::Bool(b)) => b.to_string(),
            ('s' | 'v', v) => {
                let s = go_print_inner(v);
                match precision {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            (verb, v) => format!("%!{verb}({}={})", go_type(v), go_print_inner(v)),
        };
        let w: usize = width.parse().unwrap_or(0);
        let pad = w.saturating_sub(text.chars().count());
        if flags.contains('-') {
            out.push_str(&text);
            out.push_str(&" ".repeat(pad));
        } else if flags.contains('0') && matches!(verb, 'd' | 'f' | 'x') {
            out.push_str(&"0".repeat(pad));
            out.push_str(&text);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&text);
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", go_type(a), go_print_inner(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, data: Value) -> Result<String, String> {
        Template::parse(t)?.execute(&data)
    }

    #[test]
    fn fields_ranges_and_trimming() {
        let data = json!({"items": [{"metadata": {"name": "a"}, "spec": {"replicas": 3}}, {"metadata": {"name": "b"}, "spec": {}}]});
        assert_eq!(
            run(
                "{{range .items}}{{.metadata.name}}={{.spec.replicas}}\n{{end}}",
                data.clone()
            )
            .unwrap(),
            "a=3\nb=<no value>\n"
        );
        assert_eq!(
            run(
                "{{- range $i, $p := .items -}}\n  {{ $i }}:{{ $p.metadata.name }} {{ end }}",
                data.clone()
            )
            .unwrap(),
            "0:a 1:b "
        );
        assert_eq!(
            run(
                "{{len .items}} {{index .items 1 \"metadata\" \"name\"}}",
                data.clone()
            )
            .unwrap(),
            "2 b"
        );
        assert_eq!(
            run(
                "{{range .items}}{{if .spec.replicas}}{{.metadata.name}}{{else}}none{{end}}{{end}}",
                data
            )
            .unwrap(),
            "anone"
        );
    }

    #[test]
    fn functions_and_printing_as_go() {
        let data =
            json!({"n": 1000000, "f": 0.5, "s": "aGk=", "m": {"b": 2, "a": "x"}, "l": [1, "y"]});
        assert_eq!(
            run("{{.n}} {{.f}} {{1e6}}", data.clone()).unwrap(),
            "1000000 0.5 1e+06"
        );
        assert_eq!(run("{{.s | base64decode}}", data.clone()).unwrap(), "hi");
        assert_eq!(
            run("{{.m}} {{.l}}", data.clone()).unwrap(),
            "map[a:x b:2] [1 y]"
        );
        assert_eq!(
            run("{{printf \"%-4s|%03d|%q\" \"ab\" 7 \"z\"}}", data.clone()).unwrap(),
            "ab  |007|\"z\""
        );
        assert_eq!(
            run("{{printf \"%s-%v\" .s .l}}", data.clone()).unwrap(),
            "aGk=-[1 y]"
        );
        assert_eq!(
            run(
                "{{if and (eq .f 0.5) (ne .s \"\")}}yes{{end}}",
                data.clone()
            )
            .unwrap(),
            "yes"
        );
        assert_eq!(
            run(
                "{{if exists . \"m\" \"a\"}}1{{end}}{{if exists . \"m\" \"z\"}}2{{end}}",
                data.clone()
            )
            .unwrap(),
            "1"
        );
        assert_eq!(
            run(
                "{{with .m.a}}{{.}}{{else}}-{{end}}{{with .nope}}x{{else if .f}}f{{end}}",
                data.clone()
            )
            .unwrap(),
            "xf"
        );
        assert_eq!(
            run("{{$x := .m.a}}{{$x}}{{/* note */}}", data.clone()).unwrap(),
            "x"
        );
        assert_eq!(
            run("{{range $k, $v := .m}}{{$k}}{{end}}", data).unwrap(),
            "ab"
        );
    }

    #[test]
    fn bad_templates_are_errors() {
        assert!(Template::parse("{{.a").is_err());
        assert!(Template::parse("{{range .a}}").is_err());
        assert!(
            Template::parse("{{nope .a}}")
                .unwrap_err()
                .contains("function \"nope\" not defined")
        );
        assert_eq!(
            run("{{.a.b}}", json!({"a": "s"})).unwrap_err(),
            "template: output:1:4: executing \"output\" at <.a.b>: can't evaluate field b in type interface {}"
        );
        assert_eq!(
            run("x\n {{if gt .n 1.0}}y{{end}}", json!({"n": 2})).unwrap_err(),
            "template: output:2:6: executing \"output\" at <gt .n 1.0>: error calling gt: incompatible types for comparison"
        );
    }
}
