//! jq programs from the mapping, run with jaq: the admin's way to change the *structure* of what
//! Ingram sends and receives without a release. A [`Program`] is compiled once, when the mapping
//! loads (a syntax error or an undefined name is a [`CompileError`] with its line), and runs on
//! canonical JSON documents with named global variables (`$segments`, `$po`, `$line`, …).
//!
//! Programs are pure: `env` and `now` are replaced by errors (no secret from the environment can
//! reach a body, no clock makes a body differ between a run and its retry), `halt` is an error
//! instead of an exit, and there is no `input` and no module import. A run yields every output,
//! and a caller that needs exactly one object says so ([`Program::run_object`]); the error names
//! what went wrong in the admin's terms (the program's own `error(…)` message, a type error,
//! "no output", "2 outputs").
//!
//! A program can still loop, allocate without end or recurse until the stack is gone, and a
//! thread cannot be stopped nor a stack overflow caught. So the daemon and the admin commands run
//! programs through a [`Runner`] backed by a [`Sandbox`]: a small pool of worker processes (this
//! same binary, `program-worker`, see [`worker`]) with the mapping's [`Limits`] on time (the
//! parent kills the worker), memory (the worker's address-space limit) and depth (the worker's
//! evaluation stack). A program that breaks a limit costs its worker and the one item that ran
//! it, and the error names the limit.

pub mod sandbox;
pub mod worker;

use std::fmt;
use std::sync::Arc;

use jaq_core::box_iter::box_once;
use jaq_core::compile::Undefined;
use jaq_core::data::JustLut;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::native::Fun;
use jaq_core::{Ctx, Error as JaqError, Exn, Native, Vars};
use jaq_json::{Num, Val};
use serde_json::Value;

pub use sandbox::Sandbox;

type Data = JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// A compiled jq program and the global variables it was compiled with.
#[derive(Clone)]
pub struct Program {
    filter: Arc<Filter>,
    globals: Arc<[String]>,
    /// Per global: whether the program text names it (an unnamed one is passed as null
    /// instead of being converted, which is most of a small program's cost).
    named: Arc<[bool]>,
    code: Arc<str>,
    /// Where the program is written (`mapping.toml:57 po_response.body`), for messages.
    place: Arc<str>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("code", &self.code)
            .field("globals", &self.globals)
            .field("place", &self.place)
            .finish()
    }
}

impl PartialEq for Program {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.globals == other.globals
    }
}

/// Why a program does not compile: the 1-based line within the program text, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    pub line: Option<usize>,
    pub message: String,
}

/// A body program that failed on a call: which program (its key and where it is written) and
/// why. The call is not sent; the job waits for a corrected mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the mapping's {key} program failed{at}: {error}")]
pub struct BodyProgramError {
    pub key: &'static str,
    /// ` at FILE:LINE`, or empty.
    pub at: String,
    pub error: RunError,
}

/// Why a run produced no usable result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The program raised an error: its `error(…)` value or a type error.
    #[error("the program failed: {0}")]
    Failed(String),
    /// The program yielded nothing where one value is needed.
    #[error("the program gave no output (one object is needed)")]
    NoOutput,
    /// The program yielded several values where one is needed.
    #[error("the program gave {0} outputs (one object is needed)")]
    SeveralOutputs(usize),
    /// The single output is not a JSON object.
    #[error("the program's output is {0}, not an object")]
    NotAnObject(&'static str),
    /// An output cannot be represented as JSON (NaN or an infinite number, say).
    #[error("the program's output is not JSON: {0}")]
    NotJson(String),
    /// The run was stopped at the mapping's time limit.
    #[error("the program ran longer than its time limit ([limits] program_time_ms = {0})")]
    TimeLimit(u64),
    /// The run needed more memory than the mapping's memory limit.
    #[error("the program needed more memory than its limit ([limits] program_memory_mib = {0})")]
    MemoryLimit(u64),
    /// The run recursed (or built a value nested) deeper than its stack holds.
    #[error(
        "the program recursed deeper than its depth limit allows ([limits] program_stack_mib = {0})"
    )]
    DepthLimit(u64),
    /// The worker process running it failed for another reason (it could not start, it died).
    #[error("the program worker failed: {0}")]
    Worker(String),
}

impl RunError {
    /// Whether the run broke one of the mapping's [`Limits`] (or its worker died).
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            RunError::TimeLimit(_)
                | RunError::MemoryLimit(_)
                | RunError::DepthLimit(_)
                | RunError::Worker(_)
        )
    }
}

/// The mapping's `[limits]` on every run of its programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall-clock time one run may take, in milliseconds (the worker is killed after it).
    pub program_time_ms: u64,
    /// Memory one run may add to its worker, in MiB.
    pub program_memory_mib: u64,
    /// The depth limit: the stack one run evaluates on, in MiB (recursion and the nesting of the
    /// values it builds use it).
    pub program_stack_mib: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            program_time_ms: 1000,
            program_memory_mib: 256,
            program_stack_mib: 16,
        }
    }
}

impl Limits {
    /// Accepted ranges, checked by the mapping: (key, value, lowest, highest).
    pub fn ranges(&self) -> [(&'static str, u64, u64, u64); 3] {
        [
            ("program_time_ms", self.program_time_ms, 10, 10_000),
            ("program_memory_mib", self.program_memory_mib, 16, 4096),
            ("program_stack_mib", self.program_stack_mib, 1, 1024),
        ]
    }
}

/// Names of the standard filters a program may not use, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("env", "env is not available in a mapping program"),
    (
        "now",
        "now is not available in a mapping program (a retry must give the same body)",
    ),
    ("halt", "halt is not available in a mapping program"),
];

impl Program {
    /// The program `.`: returns its input unchanged.
    pub fn identity(globals: &[&str]) -> Program {
        Program::compile(".", globals).expect("the identity program compiles")
    }

    /// Compiles `code`; `globals` are the variable names (with `$`) the program may read.
    pub fn compile(code: &str, globals: &[&str]) -> Result<Program, CompileError> {
        if let Some(line) = too_nested(code) {
            // jaq parses recursively: bound the nesting before the parser sees it.
            return Err(CompileError {
                line: Some(line),
                message: format!("the program nests brackets more than {MAX_NESTING} deep"),
            });
        }
        let globals_owned: Vec<String> = globals.iter().map(|g| g.to_string()).collect();
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errs| load_error(code, errs))?;
        let filter = jaq_core::Compiler::default()
            .with_funs(funs())
            .with_global_vars(globals.iter().copied())
            .compile(modules)
            .map_err(|errs| {
                let first = errs.into_iter().flat_map(|(_, e)| e).next();
                match first {
                    Some((name, undefined)) => CompileError {
                        line: line_of(code, name),
                        message: format!("undefined {} `{name}`", undefined_kind(&undefined)),
                    },
                    None => CompileError {
                        line: None,
                        message: "the program does not compile".into(),
                    },
                }
            })?;
        let named: Vec<bool> = globals.iter().map(|g| names_variable(code, g)).collect();
        Ok(Program {
            filter: Arc::new(filter),
            named: named.into(),
            globals: globals_owned.into(),
            code: code.into(),
            place: "".into(),
        })
    }

    /// The same program, said to be written at `place` (`mapping.toml:57 po_response.body`).
    pub fn at(mut self, place: String) -> Program {
        self.place = place.into();
        self
    }

    /// Where the program is written, or "" when not said.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// The line of the mapping file where the program starts, when its place says.
    pub fn line(&self) -> Option<usize> {
        self.place.rsplit(':').next()?.parse().ok()
    }

    /// The global variable names, in the order they are given.
    pub fn globals(&self) -> &[String] {
        &self.globals
    }

    /// The program text as written.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether the program text names the global `name` (`$segments`, say): when it does not,
    /// the caller need not build that value.
    pub fn uses(&self, name: &str) -> bool {
        self.globals
            .iter()
            .zip(self.named.iter())
            .any(|(g, named)| g == name && *named)
    }

    /// Whether this is the identity program (`.`), which callers may skip.
    pub fn is_identity(&self) -> bool {
        self.code.trim() == "."
    }

    /// Runs the program on `input` with `globals` (in the order given at compile time) and
    /// returns every output.
    pub fn run_all(&self, input: &Value, globals: &[Value]) -> Result<Vec<Value>, RunError> {
        assert_eq!(
            globals.len(),
            self.globals.len(),
            "program run with the wrong number of globals"
        );
        let input = to_val(input);
        let vars = Vars::new(globals.iter().zip(self.named.iter()).map(|(v, named)| {
            if *named {
                to_val(v)
            } else {
                Val::Null
            }
        }));
        let ctx = Ctx::<Data>::new(&self.filter.lut, vars);
        let mut out = Vec::new();
        for item in self.filter.id.run((ctx, input)) {
            match item {
                Ok(v) => out.push(from_val(&v)?),
                Err(exn) => return Err(exn_message(exn)),
            }
        }
        Ok(out)
    }

    /// Runs the program and requires exactly one output, a JSON object.
    pub fn run_object(&self, input: &Value, globals: &[Value]) -> Result<Value, RunError> {
        one_object(self.run_all(input, globals)?)
    }
}

/// The single output of a run, which must be a JSON object.
fn one_object(mut out: Vec<Value>) -> Result<Value, RunError> {
    match out.len() {
        0 => Err(RunError::NoOutput),
        1 => {
            let v = out.pop().expect("one output");
            if v.is_object() {
                Ok(v)
            } else {
                Err(RunError::NotAnObject(type_name(&v)))
            }
        }
        n => Err(RunError::SeveralOutputs(n)),
    }
}

/// How runs are carried out: in this process (tests and benches only: no limit holds there), or
/// in the worker processes of a [`Sandbox`] under the mapping's [`Limits`].
#[derive(Debug, Clone)]
pub struct Runner {
    sandbox: Option<Sandbox>,
    limits: Limits,
}

impl Runner {
    /// Runs in this process; the limits are only reported, not enforced.
    pub fn in_process(limits: Limits) -> Runner {
        Runner {
            sandbox: None,
            limits,
        }
    }

    /// Runs in `sandbox`'s workers under `limits`.
    pub fn sandboxed(sandbox: Sandbox, limits: Limits) -> Runner {
        Runner {
            sandbox: Some(sandbox),
            limits,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// Runs `program` on `input` with `globals` and returns every output. Blocks for up to the
    /// time limit: call it off the async runtime.
    pub fn run_all(
        &self,
        program: &Program,
        input: &Value,
        globals: &[Value],
    ) -> Result<Vec<Value>, RunError> {
        match &self.sandbox {
            None => program.run_all(input, globals),
            Some(s) => s.run(program, input, globals, self.limits),
        }
    }

    /// Runs `program` and requires exactly one output, a JSON object.
    pub fn run_object(
        &self,
        program: &Program,
        input: &Value,
        globals: &[Value],
    ) -> Result<Value, RunError> {
        one_object(self.run_all(program, input, globals)?)
    }
}

/// The deepest bracket nesting a program may have.
const MAX_NESTING: usize = 256;

/// The line where `code` first nests `(`, `[` or `{` deeper than [`MAX_NESTING`] (string
/// literals skipped), or `None`.
fn too_nested(code: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    let mut in_string = false;
    let mut escaped = false;
    for c in code.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(line);
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn funs() -> impl Iterator<Item = Fun<Data>> {
    jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .map(
            |(name, args, native)| match FORBIDDEN.iter().position(|(n, _)| *n == name) {
                Some(i) => (name, args, forbidden(i)),
                None => (name, args, native),
            },
        )
}

/// A native filter that fails with the reason `FORBIDDEN[i]` gives.
fn forbidden(i: usize) -> Native<Data> {
    // Function pointers cannot capture `i`, so there is one per entry.
    match i {
        0 => Native::new(|_| box_once(Err(Exn::from(JaqError::str(FORBIDDEN[0].1))))),
        1 => Native::new(|_| box_once(Err(Exn::from(JaqError::str(FORBIDDEN[1].1))))),
        _ => Native::new(|_| box_once(Err(Exn::from(JaqError::str(FORBIDDEN[2].1))))),
    }
}

fn exn_message(exn: Exn<'_, Val>) -> RunError {
    match exn.get_err() {
        Ok(err) => {
            // `error("text")` carries the text; anything else is shown as jq shows it.
            let v = err.into_val();
            let text = match &v {
                Val::TStr(_) => from_val(&v)
                    .ok()
                    .and_then(|j| j.as_str().map(str::to_string))
                    .unwrap_or_else(|| v.to_string()),
                _ => v.to_string(),
            };
            RunError::Failed(text)
        }
        Err(_) => RunError::Failed("the program stopped without a result".into()),
    }
}

fn load_error(code: &str, errs: load::Errors<&str, ()>) -> CompileError {
    for (_, err) in errs {
        match err {
            load::Error::Lex(list) => {
                if let Some((expect, found)) = list.into_iter().next() {
                    let what = match expect {
                        load::lex::Expect::Digit => "a digit",
                        load::lex::Expect::Ident => "an identifier",
                        load::lex::Expect::Delim(d) => match d {
                            "(" => "a closing parenthesis",
                            "[" => "a closing bracket",
                            "{" => "a closing brace",
                            _ => "a closing quote",
                        },
                        load::lex::Expect::Escape => "a string escape sequence",
                        load::lex::Expect::Unicode => "a 4-digit hexadecimal code point",
                        _ => "a token",
                    };
                    return CompileError {
                        line: line_of(code, found),
                        message: format!("syntax error: expected {what} {}", near(found)),
                    };
                }
            }
            load::Error::Parse(list) => {
                if let Some((expect, found)) = list.into_iter().next() {
                    return CompileError {
                        line: line_of(code, found),
                        message: format!(
                            "syntax error: expected {} {}",
                            expect.as_str(),
                            near(found)
                        ),
                    };
                }
            }
            load::Error::Io(list) => {
                let what = list
                    .into_iter()
                    .next()
                    .map(|(path, _)| path.to_string())
                    .unwrap_or_default();
                return CompileError {
                    line: None,
                    message: format!("modules cannot be imported in a mapping program ({what})"),
                };
            }
        }
    }
    CompileError {
        line: None,
        message: "the program does not parse".into(),
    }
}

fn near(found: &str) -> String {
    let snippet: String = found.chars().take(20).collect();
    if snippet.trim().is_empty() {
        "at the end of the program".into()
    } else {
        format!("near `{}`", crate::text::escape(snippet.trim_end()))
    }
}

/// Whether `code` names the variable `name` (`$po` but not `$pos`). Conservative: a mention
/// inside a string literal counts too.
fn names_variable(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(at, _)| {
        !code[at + name.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The 1-based line of `part` inside `code`, when `part` is a slice of `code`.
fn line_of(code: &str, part: &str) -> Option<usize> {
    let start = code.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if at < start || at > start + code.len() {
        return None;
    }
    Some(code[..at - start].matches('\n').count() + 1)
}

fn undefined_kind(u: &Undefined) -> &'static str {
    u.as_str()
}

fn to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::from(*b),
        Value::Number(n) => match n.as_i64().and_then(|i| isize::try_from(i).ok()) {
            Some(i) => Val::from(i),
            // Kept as the decimal text serde_json prints, so nothing is rounded on the way.
            None => Val::Num(Num::Dec(n.to_string().into())),
        },
        Value::String(s) => Val::from(s.clone()),
        Value::Array(items) => items.iter().map(to_val).collect(),
        Value::Object(map) => Val::obj(
            map.iter()
                .map(|(k, v)| (Val::from(k.clone()), to_val(v)))
                .collect(),
        ),
    }
}

fn from_val(v: &Val) -> Result<Value, RunError> {
    Ok(match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => number(n)?,
        Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::Arr(items) => Value::Array(items.iter().map(from_val).collect::<Result<_, _>>()?),
        Val::Obj(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map.iter() {
                let key = match k {
                    Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
                    other => {
                        return Err(RunError::NotJson(format!(
                            "object key {other} is not a string"
                        )))
                    }
                };
                out.insert(key, from_val(v)?);
            }
            Value::Object(out)
        }
    })
}

fn number(n: &Num) -> Result<Value, RunError> {
    if let Num::Int(i) = n {
        return Ok(Value::from(*i as i64));
    }
    // Big integers, floats and decimals: through their JSON text (NaN and infinities refused).
    let text = n.to_string();
    serde_json::from_str(&text)
        .map_err(|_| RunError::NotJson(format!("{text} is not a JSON number")))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_returns_the_input() {
        let p = Program::identity(&[]);
        let doc = json!({"a": [1, 2.5, "x", null, true], "b": {"c": 10}});
        assert_eq!(p.run_object(&doc, &[]).unwrap(), doc);
        assert!(p.is_identity());
    }

    #[test]
    fn globals_are_visible() {
        let p =
            Program::compile(".x = $po.n + ($segments | length)", &["$segments", "$po"]).unwrap();
        let out = p
            .run_object(&json!({}), &[json!([["ST"], ["SE"]]), json!({"n": 40})])
            .unwrap();
        assert_eq!(out, json!({"x": 42}));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = Program::compile(".a |\n.b |\n{x: }", &[]).unwrap_err();
        assert_eq!(e.line, Some(3), "{e:?}");
        assert!(e.message.starts_with("syntax error"), "{e:?}");
        let e = Program::compile(".a\n| $nope", &[]).unwrap_err();
        assert_eq!(e.line, Some(2), "{e:?}");
        assert!(e.message.contains("undefined variable"), "{e:?}");
        let e = Program::compile("\n\nfoo(1)", &[]).unwrap_err();
        assert_eq!(e.line, Some(3), "{e:?}");
        assert!(e.message.contains("undefined filter `foo`"), "{e:?}");
        let e = Program::compile("import \"x\" as x; .", &[]).unwrap_err();
        assert!(e.message.contains("cannot be imported"), "{e:?}");
    }

    #[test]
    fn run_errors_say_what_went_wrong() {
        let p = |c: &str| Program::compile(c, &[]).unwrap();
        let doc = json!({"a": 1});
        assert_eq!(
            p("error(\"no ship date\")").run_object(&doc, &[]),
            Err(RunError::Failed("no ship date".into()))
        );
        assert!(matches!(
            p(".a | keys").run_object(&doc, &[]),
            Err(RunError::Failed(_))
        ));
        assert_eq!(p("empty").run_object(&doc, &[]), Err(RunError::NoOutput));
        assert_eq!(
            p(".,.").run_object(&doc, &[]),
            Err(RunError::SeveralOutputs(2))
        );
        assert_eq!(
            p(".a").run_object(&doc, &[]),
            Err(RunError::NotAnObject("a number"))
        );
    }

    #[test]
    fn impure_filters_are_refused_at_run_time() {
        for code in ["{e: env}", "{t: now}", "halt", "halt_error"] {
            let p = Program::compile(code, &[]).unwrap();
            let e = p.run_object(&json!({}), &[]).unwrap_err();
            assert!(matches!(e, RunError::Failed(_)), "{code}: {e:?}");
        }
    }

    #[test]
    fn numbers_and_strings_survive_exactly() {
        let p = Program::identity(&[]);
        let doc = json!({"price": 1234.5, "big": 12345678901234u64, "s": "tab\there \"q\" é"});
        assert_eq!(p.run_object(&doc, &[]).unwrap(), doc);
        let p = Program::compile(".lines = (.items | map(. + {n: .lineNumber}))", &[]).unwrap();
        let out = p
            .run_object(&json!({"items": [{"lineNumber": "001"}]}), &[])
            .unwrap();
        assert_eq!(out["lines"][0]["n"], "001");
    }

    #[test]
    fn globals_the_program_does_not_name_are_not_passed() {
        let p = Program::compile("{s: ($segments | length)}", &["$segments", "$po"]).unwrap();
        assert!(p.uses("$segments") && !p.uses("$po"));
        let out = p.run_object(&json!({}), &[json!([1, 2]), json!({"big": "po"})]);
        assert_eq!(out.unwrap(), json!({"s": 2}));
        let p = Program::compile("$pos", &["$po"]);
        assert!(p.is_err(), "$pos is another (undefined) variable");
        assert!(!names_variable("$pos", "$po"));
        assert!(names_variable("$po.x", "$po"));
    }

    #[test]
    fn brackets_nested_too_deep_are_refused_before_the_parser_sees_them() {
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let e = Program::compile(&format!(".\n|\n{deep}"), &[]).unwrap_err();
        assert_eq!(e.line, Some(3), "{e:?}");
        assert!(e.message.contains("more than 256 deep"), "{e:?}");
        let fine = format!("{}1{}", "[".repeat(50), "]".repeat(50));
        assert!(Program::compile(&fine, &[]).is_ok());
        // Brackets inside a string do not count.
        let text = format!("{{a: \"{}\\\"\"}}", "(".repeat(400));
        assert!(Program::compile(&text, &[]).is_ok(), "{text}");
    }

    #[test]
    fn limit_errors_name_the_limit_and_its_key() {
        let l = Limits::default();
        assert_eq!(
            RunError::TimeLimit(l.program_time_ms).to_string(),
            "the program ran longer than its time limit ([limits] program_time_ms = 1000)"
        );
        assert!(RunError::MemoryLimit(256)
            .to_string()
            .contains("([limits] program_memory_mib = 256)"));
        assert!(RunError::DepthLimit(16)
            .to_string()
            .contains("depth limit allows ([limits] program_stack_mib = 16)"));
        assert!(RunError::DepthLimit(16).is_limit() && !RunError::NoOutput.is_limit());
    }

    #[test]
    fn an_in_process_runner_runs_like_the_program() {
        let r = Runner::in_process(Limits::default());
        let p = Program::compile(".a + 1", &[]).unwrap();
        assert_eq!(
            r.run_all(&p, &json!({"a": 1}), &[]).unwrap(),
            vec![json!(2)]
        );
        assert_eq!(
            r.run_object(&p, &json!({"a": 1}), &[]),
            Err(RunError::NotAnObject("a number"))
        );
    }

    #[test]
    fn a_program_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Program>();
    }
}
