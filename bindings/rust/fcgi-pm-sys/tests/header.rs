//! The declarations of `src/lib.rs` against the C headers they declare: every name of
//! `fcgi_pm.h` (functions, enum constants, macros, typedefs) is declared in Rust and
//! every Rust declaration is in the headers; then a C file generated from the Rust
//! declarations is compiled against the headers, asserting each function's type,
//! each constant's value, each type alias and the layout of each struct with fields
//! (`FCGX_Request`: fcgi_pm.h has none).
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = include_str!("../src/lib.rs");

/// Macros of the header that are not part of its API.
const NOT_API: &[&str] = &["FCGI_PM_H", "PM_PRINTF", "PM_ERRNO_MAP", "PM_XX_ENUM"];

#[derive(Debug)]
struct Decls {
    consts: Vec<(String, String, i64)>, // name, type, value
    aliases: Vec<(String, String)>,     // name, type
    structs: Vec<String>,               // repr(C) structs (opaque or not)
    const_fns: Vec<String>,
    fns: Vec<Fn>,
    fields: Vec<(String, Vec<String>)>, // the structs with public fields: their names
}

#[derive(Debug)]
struct Fn {
    name: String,
    params: Vec<String>,
    ret: Option<String>,
    variadic: bool,
}

fn strip_comments(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n")
}

/// Splits at commas outside brackets.
fn split_top(s: &str) -> Vec<String> {
    let (mut depth, mut cur, mut out) = (0, String::new(), Vec::new());
    for c in s.chars() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `(params) -> ret` of a Rust signature, params without their names.
fn signature(rest: &str) -> (Vec<String>, Option<String>, bool) {
    let open = rest.find('(').unwrap();
    let mut depth = 0;
    let mut close = open;
    for (i, c) in rest.char_indices().skip(open) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = i;
                    break;
                }
            }
            _ => {}
        }
    }
    let mut variadic = false;
    let mut params = Vec::new();
    for p in split_top(&rest[open + 1..close]) {
        if p == "..." {
            variadic = true;
        } else {
            params.push(p.split_once(':').expect("name: type").1.trim().to_string());
        }
    }
    let after = rest[close + 1..].trim().trim_end_matches(';').trim();
    let ret = after.strip_prefix("->").map(|r| r.trim().to_string());
    (params, ret, variadic)
}

fn parse_rust() -> Decls {
    let text = strip_comments(SOURCE);
    let mut d =
        Decls { consts: vec![], aliases: vec![], structs: vec![], const_fns: vec![], fns: vec![], fields: vec![] };
    // Items end at ';' or at a struct's closing brace; join them first.
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut in_struct = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with("use ") {
            continue;
        }
        if line.starts_with("pub struct") {
            in_struct = true;
        }
        // An extern block's braces; a const fn's body ends at its own closing brace.
        if line.starts_with("extern \"C\"") || line == "}" && !in_struct && cur.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push(' ');
        let done = if in_struct || cur.starts_with("pub const fn") { line == "}" } else { line.ends_with(';') };
        if done {
            items.push(std::mem::take(&mut cur));
            in_struct = false;
        }
    }
    for item in items {
        let item = item.trim();
        if let Some(rest) = item.strip_prefix("pub const fn ") {
            d.const_fns.push(rest[..rest.find('(').unwrap()].to_string());
        } else if let Some(rest) = item.strip_prefix("pub const ") {
            let (name, rest) = rest.split_once(':').unwrap();
            let (ty, value) = rest.split_once('=').unwrap();
            let value = value.trim().trim_end_matches(';').trim();
            let value: i64 = value.parse().unwrap_or_else(|_| panic!("{name}: write the value as a literal: {value}"));
            d.consts.push((name.trim().into(), ty.trim().into(), value));
        } else if let Some(rest) = item.strip_prefix("pub type ") {
            let (name, ty) = rest.split_once('=').unwrap();
            d.aliases.push((name.trim().into(), ty.trim().trim_end_matches(';').trim().into()));
        } else if let Some(rest) = item.strip_prefix("pub struct ") {
            let name = rest.split_whitespace().next().unwrap().to_string();
            let body = &rest[rest.find('{').unwrap() + 1..rest.rfind('}').unwrap()];
            let public: Vec<String> = split_top(body)
                .iter()
                .filter_map(|f| f.strip_prefix("pub "))
                .map(|f| f.split_once(':').unwrap().0.trim().to_string())
                .collect();
            if !public.is_empty() {
                d.fields.push((name.clone(), public));
            }
            d.structs.push(name);
        } else if let Some(rest) = item.strip_prefix("pub fn ") {
            let name = rest[..rest.find('(').unwrap()].trim().to_string();
            let (params, ret, variadic) = signature(rest);
            d.fns.push(Fn { name, params, ret, variadic });
        } else {
            panic!("tests/header.rs does not understand this item of src/lib.rs: {item}");
        }
    }
    d
}

/// A Rust type as a C type name (an abstract declarator).
fn c_type(rust: &str) -> String {
    let t = rust.trim();
    if let Some(inner) = t.strip_prefix("*mut ") {
        return format!("{} *", c_type(inner));
    }
    if let Some(inner) = t.strip_prefix("*const ") {
        return format!("{} const *", c_type(inner));
    }
    if let Some(inner) = t.strip_prefix("Option<").and_then(|s| s.strip_suffix('>')) {
        let sig = inner.trim().strip_prefix("unsafe extern \"C\" fn").expect("a C function pointer");
        let (params, ret, variadic) = signature(sig);
        return fn_pointer(&params, ret.as_deref(), variadic);
    }
    match t {
        "c_int" => "int".into(),
        "c_uint" => "unsigned int".into(),
        "c_longlong" => "long long".into(),
        "c_char" => "char".into(),
        "c_void" => "void".into(),
        "bool" => "_Bool".into(),
        other => other.into(), // a name the headers define
    }
}

fn fn_pointer(params: &[String], ret: Option<&str>, variadic: bool) -> String {
    let mut list: Vec<String> = params.iter().map(|p| c_type(p)).collect();
    if variadic {
        list.push("...".into());
    }
    if list.is_empty() {
        list.push("void".into());
    }
    format!("{} (*)({})", ret.map_or("void".into(), c_type), list.join(", "))
}

fn include_dirs() -> Vec<PathBuf> {
    std::env::split_paths(env!("FCGI_PM_SYS_INCLUDE")).collect()
}

fn cc() -> Command {
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    for dir in include_dirs() {
        cmd.arg("-I").arg(dir);
    }
    cmd
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the C compiler");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn header(name: &str) -> PathBuf {
    include_dirs().into_iter().map(|d| d.join(name)).find(|p| p.exists()).expect(name)
}

/// The API's names in fcgi_pm.h: functions, enum constants, typedefs, and macros
/// (function-like ones separately).
fn c_names() -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let h = header("fcgi_pm.h");
    let mut names = BTreeSet::new();
    let mut fn_macros = BTreeSet::new();
    let mut typedefs = BTreeSet::new();
    for line in output(cc().args(["-dM", "-E"]).arg(&h)).lines() {
        let def = line.strip_prefix("#define ").unwrap();
        let name: String = def.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.starts_with("PM_") && name != "FCGI_PM_H" || NOT_API.contains(&name.as_str()) {
            continue;
        }
        if def[name.len()..].starts_with('(') {
            fn_macros.insert(name);
        } else {
            names.insert(name);
        }
    }
    // Declarations after preprocessing, split at ';' outside braces.
    let text = output(cc().args(["-E", "-P"]).arg(&h));
    let text: String = text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect(); // pragmas
    let (mut depth, mut cur) = (0, String::new());
    let mut decls = Vec::new();
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ';' if depth == 0 => decls.push(std::mem::take(&mut cur)),
            _ => {}
        }
        if !(c == ';' && depth == 0) {
            cur.push(c);
        }
    }
    let ident = |s: &str| -> Vec<String> {
        s.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).map(String::from).collect()
    };
    for decl in decls {
        let decl = decl.split("__attribute__").next().unwrap();
        if let (Some(open), Some(close)) = (decl.find('{'), decl.rfind('}')) {
            if decl.contains("enum") {
                for item in decl[open + 1..close].split(',') {
                    if let Some(name) = ident(item).first() {
                        names.insert(name.clone());
                    }
                }
            }
        }
        let words = ident(decl);
        if decl.trim_start().starts_with("typedef") {
            // The typedef's name: the identifier before the parameter list of a
            // function pointer type, else the last one.
            let name = if decl.contains("(*") {
                ident(&decl[decl.find("(*").unwrap()..]).first().cloned()
            } else {
                words.last().cloned()
            };
            typedefs.insert(name.unwrap());
        } else if let Some(paren) = decl.find('(') {
            if let Some(name) = ident(&decl[..paren]).last() {
                names.insert(name.clone());
            }
        }
    }
    (names, fn_macros, typedefs)
}

#[test]
fn every_name_of_the_header_is_declared_and_nothing_else() {
    let d = parse_rust();
    let (names, fn_macros, typedefs) = c_names();
    let mut rust: BTreeSet<String> = d.consts.iter().map(|c| c.0.clone()).collect();
    rust.extend(d.fns.iter().map(|f| f.name.clone()).filter(|n| n.starts_with("pm_")));
    let missing: Vec<_> = names.difference(&rust).collect();
    let extra: Vec<_> = rust.difference(&names).collect();
    assert!(missing.is_empty(), "in fcgi_pm.h, not in src/lib.rs: {missing:?}");
    assert!(extra.is_empty(), "in src/lib.rs, not in fcgi_pm.h: {extra:?}");
    let const_fns: BTreeSet<String> = d.const_fns.iter().cloned().collect();
    assert_eq!(fn_macros, const_fns, "function-like macros against the const fns");
    let mut rust_types: BTreeSet<String> = d.aliases.iter().map(|a| a.0.clone()).collect();
    rust_types.extend(d.structs.iter().cloned());
    let missing: Vec<_> = typedefs.difference(&rust_types).collect();
    assert!(missing.is_empty(), "typedefs of fcgi_pm.h not in src/lib.rs: {missing:?}");
    // The header-only accept is declared under its compiled name.
    assert!(d.fns.iter().any(|f| f.name == "fcgi_pm_fcgx_accept_r"));
    assert!(std::fs::read_to_string(header("fcgi_pm_fcgx.h"))
        .unwrap()
        .contains("pm_fcgx_accept_r(pm_t *pm, FCGX_Request *req, int *fcgx_rc)"));
}

/// A struct's size and each field's offset and size, as Rust lays them out.
type Layout = (&'static str, usize, Vec<(&'static str, usize, usize)>);

/// The layouts of the structs with fields.
fn rust_layouts() -> Vec<Layout> {
    use fcgi_pm_sys as sys;
    use std::mem::{offset_of, size_of, size_of_val};
    macro_rules! layout {
        ($t:ident { $($f:ident),* $(,)? }) => {{
            let r: sys::$t = unsafe { std::mem::zeroed() };
            (stringify!($t), size_of::<sys::$t>(), vec![$((stringify!($f), offset_of!(sys::$t, $f), size_of_val(&r.$f))),*])
        }};
    }
    vec![layout!(FCGX_Request {
        requestId,
        role,
        in_,
        out,
        err,
        envp,
        paramsPtr,
        ipcFd,
        isBeginProcessed,
        keepConnection,
        appStatus,
        nWriters,
        flags,
        listen_sock,
        detached,
    })]
}

#[test]
fn declarations_compile_against_the_headers() {
    let d = parse_rust();
    let mut c = String::from("#include <stddef.h>\n#include <fcgi_pm.h>\n#include <fcgi_pm_fcgx.h>\n");
    let mut check = |cond: String, what: &str| {
        writeln!(c, "_Static_assert({cond}, \"src/lib.rs differs from the header: {}\");", what.replace('"', "'"))
            .unwrap();
    };
    for f in &d.fns {
        let c_name = if f.name == "fcgi_pm_fcgx_accept_r" { "pm_fcgx_accept_r" } else { &f.name };
        let ty = fn_pointer(&f.params, f.ret.as_deref(), f.variadic);
        check(format!("__builtin_types_compatible_p(__typeof__(&{c_name}), {ty})"), &format!("{} is {ty}", f.name));
    }
    for (name, ty, value) in &d.consts {
        check(format!("({name}) == {value}"), &format!("{name} is {value}"));
        check(format!("sizeof({name}) == sizeof({})", c_type(ty)), &format!("{name} is a {ty}"));
    }
    for (name, ty) in &d.aliases {
        let cty = c_type(ty);
        check(format!("__builtin_types_compatible_p({name}, {cty})"), &format!("{name} is {cty}"));
    }
    for (n, e) in [(255, false), (256, true), (300, true)] {
        check(format!("PM_IS_EXIT({n}) == {}", e as i32), "PM_IS_EXIT");
        assert_eq!(fcgi_pm_sys::PM_IS_EXIT(n), e);
        check(format!("PM_EXIT_STATUS({n}) == {}", fcgi_pm_sys::PM_EXIT_STATUS(n)), "PM_EXIT_STATUS");
    }
    let layouts = rust_layouts();
    let in_test: BTreeSet<(String, Vec<String>)> = layouts
        .iter()
        .map(|(name, _, fields)| (name.to_string(), fields.iter().map(|f| f.0.to_string()).collect()))
        .collect();
    let declared: BTreeSet<(String, Vec<String>)> = d.fields.iter().cloned().collect();
    assert_eq!(declared, in_test, "the structs with fields, and their fields, in src/lib.rs and in rust_layouts");
    for (name, size, fields) in layouts {
        check(format!("sizeof({name}) == {size}"), &format!("sizeof({name})"));
        for (field, offset, fsize) in fields {
            let cf = field.trim_end_matches('_');
            check(format!("offsetof({name}, {cf}) == {offset}"), &format!("{name}.{cf} at {offset}"));
            check(format!("sizeof((({name} *)0)->{cf}) == {fsize}"), &format!("{name}.{cf} size {fsize}"));
        }
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("fcgi_pm_sys_check.c");
    std::fs::write(&file, &c).unwrap();
    let out = cc().args(["-std=gnu11", "-fsyntax-only", "-Werror"]).arg(&file).output().expect("the C compiler");
    assert!(out.status.success(), "{}:\n{}", file.display(), String::from_utf8_lossy(&out.stderr));
    // A check that cannot fail proves nothing: a wrong declaration must fail to compile.
    let wrong = c.clone()
        + "_Static_assert(__builtin_types_compatible_p(__typeof__(&pm_manage), unsigned int (*)(pm_t *)), \"\");\n";
    std::fs::write(&file, wrong).unwrap();
    assert!(!cc().args(["-std=gnu11", "-fsyntax-only"]).arg(&file).output().unwrap().status.success());
}
