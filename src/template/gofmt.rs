//! Go's `fmt` as templates see it: `printf`/`print`/`println`, the default
//! `%v` printing of every template value, and `strconv`'s float formats
//! (`%e`, `%f`, `%g` with and without precision). Output is byte-for-byte
//! Go's, including the `%!verb(type=value)` markers for mismatched verbs.
//!
//! Floats are rendered from Rust's correctly rounded decimal conversions
//! (`{:e}` for the shortest digits, `{:.*e}`/`{:.*}` for fixed precision;
//! both round exact ties to even, as Go's `strconv` does).

use std::fmt::Write as _;

use super::value::Value;

/// The decimal digits of a finite, non-zero `|v|` and its decimal exponent:
/// `v = 0.d1d2d3… × 10^point`. `sig` is `None` for the shortest digits that
/// read back as `v`, `Some(n)` for `n` correctly rounded significant digits.
/// Trailing zeros are removed (as Go's `decimal` type does).
fn decimal_digits(v: f64, sig: Option<usize>) -> (String, i32) {
    let abs = v.abs();
    let text = match sig {
        None => {
            let s = format!("{abs:e}");
            // 17 significant digits: several strings read back; Go picks the
            // one closest to the binary value, which `{:.16e}` produces.
            if s.split('e').next().map_or(0, |m| m.len()) >= 18 {
                format!("{abs:.16e}")
            } else {
                s
            }
        }
        Some(n) => format!("{abs:.prec$e}", prec = n.saturating_sub(1)),
    };
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    (digits.to_string(), exp + 1)
}

/// `strconv`'s `%e` body from digits: `d.ddde±XX` with `prec` decimals.
fn fmt_e(out: &mut String, digits: &str, point: i32, prec: usize, upper: bool) {
    let mut chars = digits.chars();
    out.push(chars.next().unwrap_or('0'));
    if prec > 0 {
        out.push('.');
        let rest: String = chars.collect();
        out.push_str(&rest[..rest.len().min(prec)]);
        for _ in rest.len()..prec {
            out.push('0');
        }
    }
    let exp = if digits == "0" { 0 } else { point - 1 };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    let _ = write!(out, "{exp}");
}

/// `strconv`'s `%f` body from digits with `prec` decimals (no rounding: the
/// digits are already rounded to fit).
fn fmt_f(out: &mut String, digits: &str, point: i32, prec: usize) {
    let digit_at = |i: i32| -> char {
        if i >= 0 && (i as usize) < digits.len() {
            digits.as_bytes()[i as usize] as char
        } else {
            '0'
        }
    };
    if point > 0 {
        for i in 0..point {
            out.push(digit_at(i));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            out.push(digit_at(point + i));
        }
    }
}

/// Go's `strconv.FormatFloat(v, verb, prec, 64)` for verbs `e E f F g G`
/// (`prec` `None` = shortest, Go's -1). Infinities are `+Inf`/`-Inf`.
pub fn format_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let upper = verb.is_ascii_uppercase();
    match verb.to_ascii_lowercase() {
        'e' => {
            let (digits, point) = if v == 0.0 {
                ("0".to_string(), 1)
            } else {
                decimal_digits(v, prec.map(|p| p + 1))
            };
            let p = prec.unwrap_or(digits.len() - 1);
            fmt_e(&mut out, &digits, point, p, upper);
        }
        'f' => match prec {
            Some(p) => {
                let s = format!("{:.p$}", v.abs());
                out.push_str(&s);
            }
            None => {
                let (digits, point) = if v == 0.0 {
                    ("0".to_string(), 1)
                } else {
                    decimal_digits(v, None)
                };
                let p = (digits.len() as i32 - point).max(0) as usize;
                fmt_f(&mut out, &digits, point, p);
            }
        },
        _ => {
            // 'g'
            let shortest = prec.is_none();
            let prec = prec.map(|p| p.max(1));
            let (digits, point) = if v == 0.0 {
                ("0".to_string(), 1)
            } else {
                decimal_digits(v, prec)
            };
            let nd = digits.len() as i32;
            let mut eprec = prec.map_or(6, |p| p as i32);
            if eprec > nd && nd >= point {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = point - 1;
            if exp < -4 || exp >= eprec {
                let p = match prec {
                    Some(p) if (p as i32) <= nd => p as i32,
                    _ => nd,
                };
                fmt_e(&mut out, &digits, point, (p - 1).max(0) as usize, upper);
            } else {
                let p = match prec {
                    Some(p) if (p as i32) <= point => p as i32,
                    _ => nd,
                };
                fmt_f(&mut out, &digits, point, (p - point).max(0) as usize);
            }
        }
    }
    out
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`).
pub fn format_float_v(v: f64) -> String {
    format_float(v, 'g', None)
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let code = c as u32;
                if code < 0x10000 {
                    let _ = write!(out, "\\u{code:04x}");
                } else {
                    let _ = write!(out, "\\U{code:08x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One parsed `%` directive's flags, width and precision.
#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    /// Pads `body` to the width: spaces left (or right with `-`), or zeros
    /// after the sign for numbers with `0`.
    fn pad(&self, out: &mut String, body: &str, numeric_zero: bool) {
        let len = body.chars().count();
        let width = self.width.unwrap_or(0);
        if len >= width {
            out.push_str(body);
            return;
        }
        let fill = width - len;
        if self.minus {
            out.push_str(body);
            out.extend(std::iter::repeat_n(' ', fill));
        } else if self.zero && numeric_zero {
            let (sign, rest) = match body.chars().next() {
                Some(c @ ('+' | '-' | ' ')) => (Some(c), &body[1..]),
                _ => (None, body),
            };
            if let Some(c) = sign {
                out.push(c);
            }
            out.extend(std::iter::repeat_n('0', fill));
            out.push_str(rest);
        } else {
            out.extend(std::iter::repeat_n(' ', fill));
            out.push_str(body);
        }
    }

    fn sign(&self, negative: bool) -> &'static str {
        if negative {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        }
    }
}

/// Go's `fmt.Sprint(args...)`: spaces between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::String(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        out.push_str(&arg.go_display());
        prev_string = is_string;
    }
    out
}

/// Go's `fmt.Sprintln(args...)`: spaces always, newline at the end.
pub fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&arg.go_display());
    }
    out.push('\n');
    out
}

/// `%!verb(type=value)`; Go prints the value with `%v` under the
/// directive's own flags, width and precision.
fn bad_verb(out: &mut String, verb: char, arg: &Value, spec: &Spec) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    match arg {
        Value::Nil => out.push_str("<nil>"),
        _ => {
            out.push_str(&arg.type_name());
            out.push('=');
            format_arg(out, arg, 'v', spec);
        }
    }
    out.push(')');
}

fn format_int(out: &mut String, n: i128, verb: char, spec: &Spec) {
    let negative = n < 0;
    let mag = n.unsigned_abs();
    let mut digits = match verb {
        'd' | 'v' => mag.to_string(),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        'o' | 'O' => format!("{mag:o}"),
        'b' => format!("{mag:b}"),
        _ => mag.to_string(),
    };
    if let Some(p) = spec.prec {
        if p == 0 && mag == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    } else if spec.zero && !spec.minus {
        if let Some(w) = spec.width {
            let prefix_len = usize::from(negative || spec.plus || spec.space)
                + if spec.sharp && matches!(verb, 'x' | 'X' | 'b') {
                    2
                } else {
                    0
                };
            while digits.len() + prefix_len < w {
                digits.insert(0, '0');
            }
        }
    }
    let prefix = match verb {
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        'b' if spec.sharp => "0b",
        'o' if spec.sharp && !digits.starts_with('0') => "0",
        'O' => "0o",
        _ => "",
    };
    let body = format!("{}{prefix}{digits}", spec.sign(negative));
    let plain = Spec {
        zero: false,
        ..*spec
    };
    plain.pad(out, &body, false);
}

fn format_float_verb(out: &mut String, v: f64, verb: char, spec: &Spec) {
    let verb_for = if verb == 'v' { 'g' } else { verb };
    let prec = if verb == 'v' { None } else { spec.prec };
    let prec = match (verb_for, prec) {
        ('e' | 'E' | 'f' | 'F', None) => Some(6),
        (_, p) => p,
    };
    let mut num = format_float(v, verb_for, prec);
    if spec.sharp && !v.is_nan() && !v.is_infinite() && verb_for.eq_ignore_ascii_case(&'g') {
        // `%#g` keeps trailing zeros and the decimal point.
        let digits_wanted = prec.unwrap_or(6).max(1);
        let (mant, exp) = match num.find(['e', 'E']) {
            Some(i) => (num[..i].to_string(), num[i..].to_string()),
            None => (num.clone(), String::new()),
        };
        let mut mant = mant;
        if !mant.contains('.') {
            mant.push('.');
        }
        let sig = mant
            .trim_start_matches('-')
            .trim_start_matches(['0', '.'])
            .chars()
            .filter(char::is_ascii_digit)
            .count()
            .max(1);
        for _ in sig..digits_wanted {
            mant.push('0');
        }
        num = mant + &exp;
    }
    if v.is_nan() {
        let body = if spec.plus {
            "+NaN"
        } else if spec.space {
            " NaN"
        } else {
            "NaN"
        };
        let plain = Spec {
            zero: false,
            ..*spec
        };
        plain.pad(out, body, false);
        return;
    }
    let negative = num.starts_with('-');
    let unsigned = num.trim_start_matches('-');
    if v.is_infinite() {
        let body = format!(
            "{}{}",
            if negative {
                "-"
            } else if spec.space && !spec.plus {
                " "
            } else {
                "+"
            },
            unsigned.trim_start_matches('+')
        );
        let plain = Spec {
            zero: false,
            ..*spec
        };
        plain.pad(out, &body, false);
        return;
    }
    let body = format!("{}{unsigned}", spec.sign(negative));
    spec.pad(out, &body, true);
}

/// Formats one argument for one verb.
fn format_arg(out: &mut String, arg: &Value, verb: char, spec: &Spec) {
    if verb == 'T' {
        let name = match arg {
            Value::Nil => "<nil>".to_string(),
            other => other.type_name(),
        };
        spec.pad(out, &name, false);
        return;
    }
    match arg {
        Value::Nil => match verb {
            'v' => spec.pad(out, "<nil>", false),
            _ => bad_verb(out, verb, arg, spec),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => spec.pad(out, if *b { "true" } else { "false" }, false),
            _ => bad_verb(out, verb, arg, spec),
        },
        Value::Int(n) => match verb {
            'v' | 'd' | 'x' | 'X' | 'o' | 'O' | 'b' => format_int(out, i128::from(*n), verb, spec),
            'c' => match u32::try_from(*n).ok().and_then(char::from_u32) {
                Some(c) => spec.pad(out, &c.to_string(), false),
                None => spec.pad(out, "\u{FFFD}", false),
            },
            'q' => match u32::try_from(*n).ok().and_then(char::from_u32) {
                Some(c) => {
                    let quoted = go_quote(&c.to_string());
                    let inner = &quoted[1..quoted.len() - 1];
                    let inner = if inner == "'" {
                        "\\'"
                    } else if inner == "\\\"" {
                        "\""
                    } else {
                        inner
                    };
                    spec.pad(out, &format!("'{inner}'"), false);
                }
                None => spec.pad(out, "'\u{FFFD}'", false),
            },
            'U' => {
                let s = format!("U+{:04X}", *n as u64);
                spec.pad(out, &s, false);
            }
            _ => bad_verb(out, verb, arg, spec),
        },
        Value::Byte(b) => match verb {
            'v' | 'd' | 'x' | 'X' | 'o' | 'O' | 'b' => format_int(out, i128::from(*b), verb, spec),
            'c' => spec.pad(out, &char::from(*b).to_string(), false),
            _ => bad_verb(out, verb, arg, spec),
        },
        Value::Float(f) => match verb {
            'v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' => format_float_verb(out, *f, verb, spec),
            _ => bad_verb(out, verb, arg, spec),
        },
        Value::String(s) | Value::Html(s) => match verb {
            'v' | 's' => {
                let s: &str = s;
                let text: String = match spec.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.to_string(),
                };
                spec.pad(out, &text, false);
            }
            'q' => {
                let s: &str = s;
                let quoted = if spec.sharp
                    && !s.contains('`')
                    && !s.chars().any(|c| c.is_control() && c != '\t')
                {
                    format!("`{s}`")
                } else {
                    go_quote(s)
                };
                spec.pad(out, &quoted, false);
            }
            'x' | 'X' => {
                let mut hex = String::new();
                for (i, b) in s.bytes().enumerate() {
                    if spec.space && i > 0 {
                        hex.push(' ');
                    }
                    if spec.sharp && (spec.space || i == 0) {
                        hex.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    if verb == 'x' {
                        let _ = write!(hex, "{b:02x}");
                    } else {
                        let _ = write!(hex, "{b:02X}");
                    }
                }
                spec.pad(out, &hex, false);
            }
            _ => bad_verb(out, verb, arg, spec),
        },
        Value::Time(_) => match verb {
            // time.Time is a fmt.Stringer: %v, %s and %q use String().
            'v' | 's' => spec.pad(out, &arg.go_display(), false),
            'q' => spec.pad(out, &go_quote(&arg.go_display()), false),
            _ => bad_verb(out, verb, arg, spec),
        },
        Value::Kv(_)
        | Value::Pairs(_)
        | Value::Pair(_)
        | Value::Strings(_)
        | Value::Alerts(_)
        | Value::AmAlert(_)
        | Value::AmData(_) => match verb {
            // Alertmanager's data types: their %v form for every verb
            // that prints them (element-wise verbs are not reproduced).
            'v' | 's' => spec.pad(out, &arg.go_value_string(), false),
            _ => bad_verb(out, verb, arg, spec),
        },
        Value::Labels(map) => {
            // Maps format each key and value with the verb.
            let mut body = String::from("map[");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    body.push(' ');
                }
                format_arg(
                    &mut body,
                    &Value::String(k.as_str().into()),
                    verb,
                    &Spec::default(),
                );
                body.push(':');
                format_arg(
                    &mut body,
                    &Value::String(v.as_str().into()),
                    verb,
                    &Spec::default(),
                );
            }
            body.push(']');
            out.push_str(&body);
        }
        Value::Args(map) => {
            let mut body = String::from("map[");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    body.push(' ');
                }
                format_arg(
                    &mut body,
                    &Value::String(k.as_str().into()),
                    verb,
                    &Spec::default(),
                );
                body.push(':');
                format_arg(&mut body, v, verb, &Spec::default());
            }
            body.push(']');
            out.push_str(&body);
        }
        Value::Data(_) | Value::Sample(_) | Value::QueryResult(_) => match verb {
            'v' => out.push_str(&arg.go_value_string()),
            _ => bad_verb(out, verb, arg, spec),
        },
    }
}

/// Go's `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::with_capacity(format.len() + 8);
    let mut arg_index = 0usize;
    let mut reordered = false;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        // flags
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        // argument index before width
        let mut bad_index = false;
        let parse_index = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
                           arg_index: &mut usize,
                           reordered: &mut bool|
         -> bool {
            if chars.peek().map(|&(_, c)| c) != Some('[') {
                return true;
            }
            chars.next();
            let mut num = String::new();
            let mut closed = false;
            for (_, c) in chars.by_ref() {
                if c == ']' {
                    closed = true;
                    break;
                }
                num.push(c);
            }
            *reordered = true;
            match num.parse::<usize>() {
                Ok(n) if closed && n >= 1 && n <= args.len() => {
                    *arg_index = n - 1;
                    true
                }
                _ => false,
            }
        };
        if !parse_index(&mut chars, &mut arg_index, &mut reordered) {
            bad_index = true;
        }
        // width
        let mut bad_width = false;
        if chars.peek().map(|&(_, c)| c) == Some('*') {
            chars.next();
            match args.get(arg_index) {
                Some(Value::Int(n)) => {
                    arg_index += 1;
                    if *n < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    let w = n.unsigned_abs().min(1_000_000) as usize;
                    spec.width = Some(w);
                }
                Some(_) => {
                    arg_index += 1;
                    bad_width = true;
                }
                None => bad_width = true,
            }
        } else {
            let mut w = String::new();
            while let Some(&(_, d)) = chars.peek() {
                if d.is_ascii_digit() {
                    w.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            if !w.is_empty() {
                spec.width = w.parse::<usize>().ok().map(|w| w.min(1_000_000));
            }
        }
        // precision
        let mut bad_prec = false;
        if chars.peek().map(|&(_, c)| c) == Some('.') {
            chars.next();
            if !parse_index(&mut chars, &mut arg_index, &mut reordered) {
                bad_index = true;
            }
            if chars.peek().map(|&(_, c)| c) == Some('*') {
                chars.next();
                match args.get(arg_index) {
                    Some(Value::Int(n)) if *n >= 0 => {
                        arg_index += 1;
                        spec.prec = Some((*n).min(1_000_000) as usize);
                    }
                    Some(_) => {
                        arg_index += 1;
                        bad_prec = true;
                    }
                    None => bad_prec = true,
                }
            } else {
                let mut p = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_digit() {
                        p.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                spec.prec = Some(p.parse::<usize>().unwrap_or(0).min(1_000_000));
            }
        }
        if !parse_index(&mut chars, &mut arg_index, &mut reordered) {
            bad_index = true;
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if bad_width {
            out.push_str("%!(BADWIDTH)");
        }
        if bad_prec {
            out.push_str("%!(BADPREC)");
        }
        if verb == '%' {
            out.push('%');
            continue;
        }
        if bad_index {
            out.push_str("%!");
            out.push(verb);
            out.push_str("(BADINDEX)");
            continue;
        }
        match args.get(arg_index) {
            None => {
                out.push_str("%!");
                out.push(verb);
                out.push_str("(MISSING)");
            }
            Some(arg) => {
                arg_index += 1;
                format_arg(&mut out, arg, verb, &spec);
            }
        }
    }
    if !reordered && arg_index < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in args[arg_index..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match arg {
                Value::Nil => out.push_str("<nil>"),
                _ => {
                    out.push_str(&arg.type_name());
                    out.push('=');
                    format_arg(&mut out, arg, 'v', &Spec::default());
                }
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_go_strconv() {
        let cases: &[(f64, char, Option<usize>, &str)] = &[
            (1e6, 'g', None, "1e+06"),
            (123456.0, 'g', None, "123456"),
            (1234567.0, 'g', None, "1.234567e+06"),
            (0.0001, 'g', None, "0.0001"),
            (0.00001, 'g', None, "1e-05"),
            (0.1, 'g', None, "0.1"),
            (-0.0, 'g', None, "-0"),
            (100.0, 'g', None, "100"),
            (1.0, 'g', Some(4), "1"),
            (1234.5, 'g', Some(4), "1234"),
            (9999.5, 'g', Some(4), "1e+04"),
            (12345.0, 'g', Some(4), "1.234e+04"),
            (100000.0, 'g', Some(4), "1e+05"),
            (0.000012345, 'g', Some(4), "1.234e-05"),
            (1.5, 'f', Some(2), "1.50"),
            (2.5, 'f', Some(0), "2"),
            (1.0, 'e', Some(2), "1.00e+00"),
            (123.456, 'e', Some(6), "1.234560e+02"),
            (f64::INFINITY, 'g', Some(4), "+Inf"),
            (f64::NAN, 'f', Some(2), "NaN"),
            (0.1 + 0.2, 'g', None, "0.30000000000000004"),
        ];
        for &(v, verb, prec, want) in cases {
            assert_eq!(format_float(v, verb, prec), want, "{v} {verb} {prec:?}");
        }
    }

    #[test]
    fn printf_verbs() {
        let f = Value::Float(1.5);
        assert_eq!(sprintf("%d", std::slice::from_ref(&f)), "%!d(float64=1.5)");
        assert_eq!(
            sprintf("%.2f|%5.1f|%-6.1f|", &[f.clone(), f.clone(), f.clone()]),
            "1.50|  1.5|1.5   |"
        );
        assert_eq!(sprintf("%s", &[Value::Int(3)]), "%!s(int=3)");
        assert_eq!(sprintf("%q", &[Value::String("a\"b".into())]), "\"a\\\"b\"");
        assert_eq!(sprintf("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(
            sprintf("%d", &[Value::Int(1), Value::String("x".into())]),
            "1%!(EXTRA string=x)"
        );
        assert_eq!(
            sprintf(
                "%05d|%x|%X|%o|%b",
                &[
                    Value::Int(-42),
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5)
                ]
            ),
            "-0042|ff|FF|10|101"
        );
        assert_eq!(sprintf("100%%", &[]), "100%");
        assert_eq!(sprintf("%", &[]), "%!(NOVERB)");
        assert_eq!(
            sprintf("%T %T", &[Value::Float(1.0), Value::String("".into())]),
            "float64 string"
        );
        assert_eq!(sprintf("%08.3f", &[Value::Float(-2.5)]), "-002.500");
        assert_eq!(sprintf("%+.1e", &[Value::Float(12345.0)]), "+1.2e+04");
        assert_eq!(sprintf("%v", &[Value::Float(f64::INFINITY)]), "+Inf");
    }
}
