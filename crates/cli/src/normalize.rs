//! `payerr normalize`: one response, or an NDJSON stream of them.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use payerr::{Engine, Lang, Options, Response, ResponseInput};

use crate::args::{Format, NormalizeArgs};
use crate::failure::Failure;
use crate::render::verdict_text;

/// Largest single body read from a file or stdin; past it the command refuses rather than grow.
const MAX_BODY: u64 = 64 * 1024 * 1024;
/// Largest NDJSON line; a longer line gets an error object and the stream goes on.
const MAX_LINE: usize = 16 * 1024 * 1024;

pub fn run(engine: &Engine, args: &NormalizeArgs) -> Result<String, Failure> {
    if args.dialect != "auto" {
        // Checked before reading input, so a typo fails fast with exit 2.
        engine.require_dialect(&args.dialect)?;
    }
    let input = open(args.input.as_deref())?;
    if args.ndjson {
        return match stream(engine, args, input) {
            // The reader went away (`| head`): stop quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(String::new()),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(String::new()),
        };
    }
    let mut body = Vec::new();
    input.take(MAX_BODY + 1).read_to_end(&mut body)?;
    if body.len() as u64 > MAX_BODY {
        return Err(Failure::usage(format!(
            "the body is larger than {} MiB",
            MAX_BODY >> 20
        )));
    }
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let response = Response {
        http_status: args.status,
        headers,
        body: &body,
    };
    let lang = lang_for(args.lang.as_deref(), &response);
    let verdict = engine.normalize(
        &response,
        &Options {
            dialect: Some(&args.dialect),
            lang,
        },
    )?;
    Ok(match args.format {
        Format::Json => crate::json_line(&verdict),
        Format::Text => verdict_text(&verdict, engine.taxonomy()),
    })
}

fn open(path: Option<&Path>) -> Result<Box<dyn BufRead>, Failure> {
    match path {
        None => Ok(Box::new(BufReader::new(io::stdin()))),
        Some(p) if p == Path::new("-") => Ok(Box::new(BufReader::new(io::stdin()))),
        Some(p) => {
            let file = File::open(p)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display())))?;
            Ok(Box::new(BufReader::new(file)))
        }
    }
}

/// The language: the explicit choice, else the one the response's headers asked for.
fn lang_for(explicit: Option<&str>, response: &Response<'_>) -> Lang {
    explicit
        .and_then(Lang::parse)
        .unwrap_or_else(|| response.language())
}

/// Splits `Name: value`.
fn parse_header(raw: &str) -> Result<(&str, &str), Failure> {
    match raw.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v.trim())),
        _ => Err(Failure::usage(format!(
            "--header `{raw}` is not of the form 'Name: value'"
        ))),
    }
}

/// An error for one line, in seed 000's format.
fn line_error(line: usize, code: &str, message: String, param: Option<&str>) -> String {
    crate::json_line(&serde_json::json!({
        "line": line,
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
        }
    }))
}

fn stream(engine: &Engine, args: &NormalizeArgs, mut input: Box<dyn BufRead>) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let (read, overflow) = read_line_bounded(&mut input, &mut buf, MAX_LINE)?;
        if read == 0 {
            break;
        }
        number += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let answer = if overflow {
            line_error(
                number,
                "invalid_parameter",
                format!("line {number} is longer than {} MiB", MAX_LINE >> 20),
                None,
            )
        } else {
            answer_line(engine, args, number, &buf)
        };
        out.write_all(answer.as_bytes())?;
        // Flush when no more input is waiting, so interactive use sees each answer at once while a
        // bulk stream is written in large blocks.
        if input.fill_buf().map(|b| b.is_empty()).unwrap_or(true) {
            out.flush()?;
        }
    }
    out.flush()?;
    Ok(())
}

fn answer_line(engine: &Engine, args: &NormalizeArgs, number: usize, raw: &[u8]) -> String {
    let line = match ResponseInput::parse(raw) {
        Ok(line) => line,
        Err(e) => {
            return line_error(
                number,
                e.code,
                format!("line {number}: {e}"),
                e.param.as_deref(),
            )
        }
    };
    let response = line.response();
    let lang = lang_for(line.lang.as_deref().or(args.lang.as_deref()), &response);
    let dialect = line.dialect.as_deref().unwrap_or(&args.dialect);
    match engine.normalize(
        &response,
        &Options {
            dialect: Some(dialect),
            lang,
        },
    ) {
        Ok(verdict) => crate::json_line(&verdict),
        Err(e) => line_error(number, "invalid_parameter", e.to_string(), Some("dialect")),
    }
}

/// Reads one line (without its newline) into `buf`, keeping at most `max` bytes and discarding the
/// rest of an over-long line. Returns the bytes consumed (0 at end of input) and whether it overflowed.
fn read_line_bounded(
    input: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<(usize, bool)> {
    let (mut consumed, mut overflow) = (0, false);
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((consumed, overflow));
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if buf.len() + part.len() > max {
            overflow = true;
        } else {
            buf.extend_from_slice(part);
        }
        let used = done.unwrap_or(chunk.len());
        input.consume(used);
        consumed += used;
        if done.is_some() {
            return Ok((consumed, overflow));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_drop_the_excess_and_resume_at_the_next_line() {
        let mut input: &[u8] = b"short\nthis line is too long\nok";
        let mut buf = Vec::new();
        assert_eq!(
            read_line_bounded(&mut input, &mut buf, 8).unwrap(),
            (6, false)
        );
        assert_eq!(buf, b"short");
        buf.clear();
        let (_, overflow) = read_line_bounded(&mut input, &mut buf, 8).unwrap();
        assert!(overflow);
        buf.clear();
        assert_eq!(
            read_line_bounded(&mut input, &mut buf, 8).unwrap(),
            (2, false)
        );
        assert_eq!(buf, b"ok");
        buf.clear();
        assert_eq!(
            read_line_bounded(&mut input, &mut buf, 8).unwrap(),
            (0, false)
        );
    }

    #[test]
    fn headers_need_a_name_and_a_colon() {
        assert_eq!(
            parse_header("Retry-After: 5").unwrap(),
            ("Retry-After", "5")
        );
        assert!(parse_header("Retry-After 5").is_err());
        assert!(parse_header(": 5").is_err());
    }
}
