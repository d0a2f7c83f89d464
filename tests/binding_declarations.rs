//! The Ruby (`native.rb`) and .NET (`Pseudostream.Native.cs`) bindings
//! declare the part of the C ABI they call by hand. Every function, constant
//! and struct they declare is checked against the generated header
//! (`include/pseudostream_ffi.h`, the preprocessor-free one): the name
//! exists, the argument count and each argument's type agree, the constants
//! have the header's values and the structs its fields, in order. No system
//! package is needed.

use std::collections::BTreeMap;
use std::fs;

mod common;

/// A C type as the ABI sees it, the way both bindings can spell it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Abi {
    Void,
    U32,
    I32,
    U64,
    I64,
    Usize,
    /// A pointer; what it points at when the binding can say (`out uint`).
    Ptr(Option<Box<Abi>>),
    /// A struct by name (only behind a pointer).
    Struct(String),
    /// A handle or anything else opaque behind a pointer.
    Opaque,
    U8,
}

#[derive(Debug)]
struct Function {
    ret: Abi,
    args: Vec<Abi>,
}

#[derive(Debug, Default)]
struct Header {
    functions: BTreeMap<String, Function>,
    /// Enum name → its constants and values.
    enums: BTreeMap<String, Vec<(String, u64)>>,
    /// Struct name → its fields (name, type), in order.
    structs: BTreeMap<String, Vec<(String, Abi)>>,
}

fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        rest = rest[at..]
            .find("*/")
            .map_or("", |end| &rest[at + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A C declaration's type (`const char *`, `ps_status`, `size_t *`).
/// Enums are `uint32_t` on the ABI; a pointer to a typedef that is neither
/// a scalar nor a struct of the header points at something opaque.
fn c_type(text: &str, header: &Header) -> Abi {
    let t = text.replace("const ", "");
    let t = t.trim();
    if let Some(inner) = t.strip_suffix('*') {
        let pointee = match c_type(inner, header) {
            Abi::Struct(name) if !header.structs.contains_key(&name) => Abi::Opaque,
            Abi::Ptr(_) => Abi::Ptr(None),
            other => other,
        };
        return Abi::Ptr(Some(Box::new(pointee)));
    }
    match t {
        "void" => Abi::Void,
        "uint32_t" | "unsigned int" | "bool" => Abi::U32,
        "int32_t" | "int" => Abi::I32,
        "uint64_t" => Abi::U64,
        "int64_t" => Abi::I64,
        "size_t" | "uintptr_t" => Abi::Usize,
        "uint8_t" | "char" => Abi::U8,
        // Callbacks are pointers to functions.
        _ if t.ends_with("_fn") => Abi::Ptr(None),
        _ if header.enums.contains_key(t) => Abi::U32,
        _ => Abi::Struct(t.to_owned()),
    }
}

/// Splits `type name` (the name may be missing) into the type.
fn c_param_type(param: &str) -> &str {
    let p = param.trim();
    match p.rfind(|c: char| !(c.is_alphanumeric() || c == '_')) {
        Some(at) if p[at..].starts_with('*') => &p[..=at],
        Some(at) => &p[..at],
        None => p,
    }
}

fn parse_header(text: &str) -> Header {
    let text = without_comments(text);
    let mut header = Header::default();
    // Enums first: functions and fields name them as types.
    let mut rest = text.as_str();
    while let Some(at) = rest.find("enum ") {
        rest = &rest[at + 5..];
        let Some(open) = rest.find('{') else { break };
        let name = rest[..open].trim().to_owned();
        let close = rest.find('}').unwrap();
        let constants = rest[open + 1..close]
            .split(',')
            .filter_map(|c| {
                let (k, v) = c.split_once('=')?;
                let v = v.trim();
                let v = match v.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).ok()?,
                    None => v.parse().ok()?,
                };
                Some((k.trim().to_owned(), v))
            })
            .collect();
        header.enums.insert(name, constants);
        rest = &rest[close..];
    }
    // Structs: `typedef struct { fields } name;`
    let mut rest = text.as_str();
    while let Some(at) = rest.find("typedef struct {") {
        rest = &rest[at + "typedef struct {".len()..];
        let close = rest.find('}').unwrap();
        let end = rest[close..].find(';').unwrap() + close;
        let name = rest[close + 1..end].trim().to_owned();
        let fields = rest[..close]
            .split(';')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let f = f.split_whitespace().collect::<Vec<_>>().join(" ");
                let ty = c_param_type(&f).to_owned();
                let field = f[ty.len()..].trim().to_owned();
                (field, c_type(&ty, &header))
            })
            .collect();
        header.structs.insert(name, fields);
        rest = &rest[end..];
    }
    for statement in text.split(';') {
        let s = statement.split_whitespace().collect::<Vec<_>>().join(" ");
        let s = s.trim_start_matches('}').trim();
        if s.starts_with("typedef") || s.starts_with("enum") || s.starts_with('#') {
            continue;
        }
        let (Some(open), true) = (s.find('('), s.ends_with(')')) else {
            continue;
        };
        let head = &s[..open];
        let name_at = head
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &head[name_at..];
        if !name.starts_with("ps_") {
            continue;
        }
        let params = &s[open + 1..s.len() - 1];
        let args = if params.trim() == "void" {
            Vec::new()
        } else {
            params
                .split(',')
                .map(|p| c_type(c_param_type(p), &header))
                .collect()
        };
        let ret = c_type(&head[..name_at], &header);
        header
            .functions
            .insert(name.to_owned(), Function { ret, args });
    }
    header
}

/// A binding's declarations in the header's terms.
#[derive(Debug, Default)]
struct Declared {
    functions: BTreeMap<String, Function>,
    /// Constant name (the header's) → value.
    constants: BTreeMap<String, u64>,
    /// Header struct name → fields (the header's names), in order.
    structs: BTreeMap<String, Vec<(String, Abi)>>,
    /// What could not be read at all.
    unreadable: Vec<String>,
}

fn ruby_type(t: &str) -> Option<Abi> {
    Some(match t.trim().trim_start_matches(':') {
        "void" => Abi::Void,
        "uint32" | "uint" | "ps_status" => Abi::U32,
        "int32" | "int" => Abi::I32,
        "uint64" | "ulong_long" => Abi::U64,
        "int64" | "long_long" => Abi::I64,
        "size_t" => Abi::Usize,
        "pointer" | "buffer_in" | "buffer_out" | "buffer_inout" => Abi::Ptr(None),
        // A NUL-terminated string in, or a `const char *` out.
        "string" => Abi::Ptr(Some(Box::new(Abi::U8))),
        _ => return None,
    })
}

/// `[:a, :b]`, `%i[a b]` or `[]` → the symbols.
fn ruby_list(text: &str) -> Option<Vec<String>> {
    let t = text.trim();
    if let Some(words) = t.strip_prefix("%i[") {
        let words = words.strip_suffix(']')?;
        return Some(words.split_whitespace().map(str::to_owned).collect());
    }
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .split(',')
            .map(|s| s.trim().trim_start_matches(':').to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn parse_ruby(text: &str) -> Declared {
    let mut declared = Declared::default();
    // Statements may continue on the next line after a comma.
    let mut statements: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split(" # ").next().unwrap_or("").trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match statements.last_mut() {
            Some(last) if last.ends_with(',') => {
                last.push(' ');
                last.push_str(line);
            }
            _ => statements.push(line.to_owned()),
        }
    }
    let mut class: Option<String> = None;
    for s in &statements {
        if let Some(rest) = s.strip_prefix("attach_function ") {
            // :name, [args], :ret[, **options]
            let Some(args_at) =
                rest.find(['['])
                    .map(|i| if rest[..i].ends_with("%i") { i - 2 } else { i })
            else {
                declared.unreadable.push(s.clone());
                continue;
            };
            let name = rest[..args_at]
                .trim()
                .trim_end_matches(',')
                .trim_start_matches(':');
            let close = rest[args_at..].find(']').unwrap() + args_at;
            let list = ruby_list(&rest[args_at..=close]);
            let ret = rest[close + 1..]
                .trim_start_matches(',')
                .split(',')
                .next()
                .unwrap_or("");
            match (list, ruby_type(ret)) {
                (Some(list), Some(ret)) => {
                    let args: Option<Vec<Abi>> = list.iter().map(|a| ruby_type(a)).collect();
                    match args {
                        Some(args) => {
                            declared
                                .functions
                                .insert(name.to_owned(), Function { ret, args });
                        }
                        None => declared.unreadable.push(s.clone()),
                    }
                }
                _ => declared.unreadable.push(s.clone()),
            }
        } else if let Some((name, value)) = s.split_once(" = ") {
            if name.starts_with("PS_") {
                match value.trim().parse() {
                    Ok(v) => {
                        declared.constants.insert(name.trim().to_owned(), v);
                    }
                    Err(_) => declared.unreadable.push(s.clone()),
                }
            }
        } else if let Some(rest) = s.strip_prefix("class ") {
            class = rest
                .split_once(" < FFI::Struct")
                .map(|(name, _)| format!("ps_{}", snake(name.trim())));
        } else if let (Some(layout), Some(name)) = (s.strip_prefix("layout "), &class) {
            let symbols: Vec<&str> = layout
                .split(',')
                .map(|t| t.trim().trim_start_matches(':'))
                .collect();
            let fields = symbols
                .chunks(2)
                .map(|pair| match (pair, ruby_type(pair.get(1).unwrap_or(&""))) {
                    ([field, _], Some(ty)) => Some(((*field).to_owned(), ty)),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>();
            match fields {
                Some(fields) => {
                    declared.structs.insert(name.clone(), fields);
                }
                None => declared.unreadable.push(s.clone()),
            }
        }
    }
    declared
}

/// A C# parameter or return type; `out`/`ref` and arrays are pointers.
fn cs_type(t: &str) -> Option<Abi> {
    let t = t.replace("[Out]", "").replace("[In]", "");
    let t = t.trim();
    if let Some(inner) = t.strip_prefix("out ").or_else(|| t.strip_prefix("ref ")) {
        let inner = cs_type(inner)?;
        return Some(Abi::Ptr(Some(Box::new(match inner {
            Abi::Ptr(_) => Abi::Ptr(None),
            other => other,
        }))));
    }
    Some(match t {
        "void" => Abi::Void,
        "uint" => Abi::U32,
        "int" => Abi::I32,
        "ulong" => Abi::U64,
        "long" => Abi::I64,
        "UIntPtr" | "nuint" => Abi::Usize,
        "byte[]" => Abi::Ptr(Some(Box::new(Abi::U8))),
        "IntPtr" => Abi::Ptr(None),
        // SafeHandle subclasses marshal as the pointer they hold.
        _ if t.ends_with("Handle") => Abi::Ptr(None),
        _ if t.starts_with("Ps") => Abi::Struct(format!("ps_{}", snake(&t[2..]))),
        _ => return None,
    })
}

fn parse_cs(text: &str, header: &Header) -> Declared {
    let mut declared = Declared::default();
    let text = without_comments(text);
    for s in text.split(';') {
        let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(at) = s.find("static extern ") {
            if !s.contains("DllImport(Library") {
                continue; // libdl and the like
            }
            let decl = &s[at + "static extern ".len()..];
            let (Some(open), true) = (decl.find('('), decl.ends_with(')')) else {
                declared.unreadable.push(s.clone());
                continue;
            };
            let (ret, name) = decl[..open].trim().rsplit_once(' ').unwrap_or(("", ""));
            let params = &decl[open + 1..decl.len() - 1];
            let args: Option<Vec<Abi>> = if params.trim().is_empty() {
                Some(Vec::new())
            } else {
                params
                    .split(',')
                    .map(|p| cs_type(p.trim().rsplit_once(' ').map_or("", |(t, _)| t)))
                    .collect()
            };
            match (cs_type(ret), args) {
                (Some(ret), Some(args)) => {
                    declared
                        .functions
                        .insert(name.to_owned(), Function { ret, args });
                }
                _ => declared.unreadable.push(s.clone()),
            }
        }
    }
    // Constant classes (`public static class PsStatus { public const uint Ok = 0; }`)
    // and sequential structs (`public struct PsExchangeInfo { public uint Status; }`).
    let mut rest = text.as_str();
    while let Some(at) = rest
        .find("public static class Ps")
        .or_else(|| rest.find("public struct Ps"))
    {
        let is_struct = rest[at..].starts_with("public struct");
        let decl = &rest[at..];
        let open = decl.find('{').unwrap();
        let close = decl.find('}').unwrap();
        let cs_name = decl[..open].split_whitespace().last().unwrap();
        let c_name = format!("ps_{}", snake(&cs_name[2..]));
        let members = decl[open + 1..close]
            .split(';')
            .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|m| !m.is_empty());
        if is_struct {
            let fields: Option<Vec<(String, Abi)>> = members
                .map(|m| {
                    let mut words = m.trim_start_matches("public ").split(' ');
                    let ty = cs_type(words.next()?)?;
                    Some((snake(words.next()?), ty))
                })
                .collect();
            match fields {
                Some(fields) => {
                    declared.structs.insert(c_name, fields);
                }
                None => declared.unreadable.push(cs_name.to_owned()),
            }
        } else {
            let constants = header.enums.get(&c_name);
            for m in members {
                let Some((lhs, value)) = m.split_once(" = ") else {
                    continue;
                };
                let member = lhs.split_whitespace().last().unwrap();
                let suffix = format!("_{}", snake(member).to_uppercase());
                // The header's constant of that enum whose name ends so.
                let matching: Vec<&String> = constants
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                    .filter(|k| k.ends_with(&suffix))
                    .collect();
                match (matching.as_slice(), value.trim().parse::<u64>()) {
                    ([k], Ok(v)) => {
                        declared.constants.insert((*k).clone(), v);
                    }
                    _ => declared.unreadable.push(format!(
                        "{cs_name}.{member} (no one {c_name} constant ends in {suffix})"
                    )),
                }
            }
        }
        rest = &decl[close..];
    }
    declared
}

/// Points at a pointer argument the binding types loosely (`:pointer`,
/// `IntPtr`) agree with any pointer; a typed one must agree exactly,
/// except that handles and opaque pointees are all one.
fn agrees(declared: &Abi, header: &Abi) -> bool {
    match (declared, header) {
        (Abi::Ptr(None), Abi::Ptr(_)) => true,
        (Abi::Ptr(Some(d)), Abi::Ptr(Some(h))) => match (d.as_ref(), h.as_ref()) {
            (Abi::Ptr(_), Abi::Ptr(_) | Abi::Opaque) => true,
            (d, h) => agrees(d, h),
        },
        (Abi::Ptr(Some(_)), Abi::Ptr(None)) => true,
        (d, h) => d == h,
    }
}

/// Every way `declared` differs from `header`.
fn drift(binding: &str, declared: &Declared, header: &Header) -> Vec<String> {
    let mut problems: Vec<String> = declared
        .unreadable
        .iter()
        .map(|u| format!("{binding}: cannot read {u:?}"))
        .collect();
    for (name, f) in &declared.functions {
        let Some(h) = header.functions.get(name) else {
            problems.push(format!("{binding}: {name} is not in the header"));
            continue;
        };
        if f.args.len() != h.args.len() {
            problems.push(format!(
                "{binding}: {name} takes {} arguments, the header {}",
                f.args.len(),
                h.args.len()
            ));
            continue;
        }
        if !agrees(&f.ret, &h.ret) {
            problems.push(format!(
                "{binding}: {name} returns {:?}, the header {:?}",
                f.ret, h.ret
            ));
        }
        for (i, (d, c)) in f.args.iter().zip(&h.args).enumerate() {
            if !agrees(d, c) {
                problems.push(format!(
                    "{binding}: {name} argument {} is {d:?}, the header's {c:?}",
                    i + 1
                ));
            }
        }
    }
    let header_constants: BTreeMap<&String, u64> = header
        .enums
        .values()
        .flatten()
        .map(|(k, v)| (k, *v))
        .collect();
    for (name, value) in &declared.constants {
        match header_constants.get(name) {
            None => problems.push(format!("{binding}: {name} is not in the header")),
            Some(v) if v != value => {
                problems.push(format!("{binding}: {name} = {value}, the header's is {v}"))
            }
            _ => {}
        }
    }
    for (name, fields) in &declared.structs {
        let Some(h) = header.structs.get(name) else {
            problems.push(format!("{binding}: struct {name} is not in the header"));
            continue;
        };
        if fields.len() != h.len() {
            problems.push(format!(
                "{binding}: {name} has {} fields, the header {}",
                fields.len(),
                h.len()
            ));
        }
        for ((f, t), (hf, ht)) in fields.iter().zip(h) {
            if f != hf || !agrees(t, ht) {
                problems.push(format!(
                    "{binding}: {name}.{f} {t:?} where the header has {hf} {ht:?}"
                ));
            }
        }
    }
    problems
}

fn read(path: &str) -> String {
    fs::read_to_string(common::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn header() -> Header {
    parse_header(&read("include/pseudostream_ffi.h"))
}

fn summary(d: &Declared) -> String {
    format!(
        "checked {} functions ({} arguments), {} constants, {} structs ({} fields)",
        d.functions.len(),
        d.functions.values().map(|f| f.args.len()).sum::<usize>(),
        d.constants.len(),
        d.structs.len(),
        d.structs.values().map(Vec::len).sum::<usize>()
    )
}

const RUBY: &str = "bindings/ruby/lib/pseudostream/native.rb";
const DOTNET: &str = "bindings/dotnet/Pseudostream.Native.cs";

#[test]
fn the_header_reads_as_the_abi() {
    let h = header();
    assert!(
        h.functions.len() > 60,
        "functions read: {}",
        h.functions.len()
    );
    let fill = &h.functions["ps_exchange_fill"];
    assert_eq!(fill.ret, Abi::U32);
    assert_eq!(fill.args.len(), 7);
    assert_eq!(fill.args[3], Abi::U64);
    assert_eq!(h.functions["ps_version"].args, vec![]);
    assert_eq!(
        h.enums["ps_status"].last(),
        Some(&("PS_ERR_NOT_CACHED".to_owned(), 14))
    );
    assert_eq!(h.structs["ps_exchange_info"].len(), 8);
}

#[test]
fn ruby_declarations_match_the_header() {
    let declared = parse_ruby(&read(RUBY));
    assert!(declared.functions.len() >= 20, "{declared:?}");
    assert!(declared.constants.len() >= 15, "{declared:?}");
    assert_eq!(declared.structs.len(), 2, "{declared:?}");
    eprintln!("{}", summary(&declared));
    common::assert_no_failures(RUBY, &drift("ruby", &declared, &header()));
}

#[test]
fn dotnet_declarations_match_the_header() {
    let h = header();
    let declared = parse_cs(&read(DOTNET), &h);
    assert!(declared.functions.len() >= 15, "{declared:?}");
    assert!(declared.constants.len() >= 15, "{declared:?}");
    assert_eq!(declared.structs.len(), 1, "{declared:?}");
    eprintln!("{}", summary(&declared));
    common::assert_no_failures(DOTNET, &drift("dotnet", &declared, &h));
}

/// The check sees each kind of drift: a changed value, a missing argument,
/// a wrong argument type, a renamed function, a reordered field.
#[test]
fn a_drifted_binding_fails_the_check() {
    let h = header();
    let ruby = read(RUBY);
    let dotnet = read(DOTNET);
    let ruby_drifts = [
        ("PS_ERR_NOT_CACHED = 14", "PS_ERR_NOT_CACHED = 15"),
        (
            "%i[pointer string string], :ps_status",
            "%i[pointer string], :ps_status",
        ),
        (
            "attach_function :ps_status_http, [:uint32]",
            "attach_function :ps_status_http, [:uint64]",
        ),
        (
            "attach_function :ps_exchange_free,",
            "attach_function :ps_exchange_release,",
        ),
        (
            ":content_length, :uint64,\n             :body_length",
            ":body_length, :uint64,\n             :content_length",
        ),
    ];
    for (from, to) in ruby_drifts {
        assert!(ruby.contains(from), "ruby: {from:?} not found");
        let drifted = parse_ruby(&ruby.replacen(from, to, 1));
        assert!(
            !drift("ruby", &drifted, &h).is_empty(),
            "ruby: {from:?} -> {to:?} unnoticed"
        );
    }
    let dotnet_drifts = [
        (
            "public const uint NotCached = 14;",
            "public const uint NotCached = 13;",
        ),
        (
            "UIntPtr cap,\n            ulong nowUs",
            "UIntPtr cap,\n            uint nowUs",
        ),
        ("out uint wants", "out ulong wants"),
        ("ps_exchange_detail(", "ps_exchange_details("),
        ("public ulong BurstBytes;", "public uint BurstBytes;"),
    ];
    for (from, to) in dotnet_drifts {
        assert!(dotnet.contains(from), "dotnet: {from:?} not found");
        let drifted = parse_cs(&dotnet.replacen(from, to, 1), &h);
        assert!(
            !drift("dotnet", &drifted, &h).is_empty(),
            "dotnet: {from:?} -> {to:?} unnoticed"
        );
    }
}
