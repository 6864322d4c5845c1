//! `payerr report`: the gateway's recorded attempts, summarized for whoever is on call. The numbers
//! come from `payerr_events::read_report` (docs/report.md); this module only prints them.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use payerr_events::Report;
use payerr_server::log::rfc3339;

use crate::args::{Format, ReportArgs};
use crate::failure::Failure;

pub fn run(args: &ReportArgs) -> Result<String, Failure> {
    let since = payerr_events::parse_since(&args.since)
        .map_err(|e| Failure::usage(format!("--since: {e}")))?;
    let window = payerr_events::Window::last(since, payerr_events::now_ms());
    let report = payerr_events::read_report(&args.data_dir, window).map_err(Failure::usage)?;
    Ok(match args.format {
        Format::Json => crate::json_line(&report),
        Format::Text => text(&report, &args.since),
    })
}

/// The report as aligned plain-text tables, most important first, each at most about 80 columns.
fn text(report: &Report, since: &str) -> String {
    let mut out = String::new();
    summary(&mut out, report, since);
    if report.totals.attempts == 0 {
        let last = match report.last_event_at_ms {
            Some(at) => format!("the most recent event is from {}", time(at)),
            None => "the database holds no events yet".to_owned(),
        };
        let _ = writeln!(out, "\nNo attempts in this window: {last}.");
        return out;
    }
    providers(&mut out, report);
    let failovers: Vec<Vec<String>> = report
        .failovers
        .iter()
        .map(|f| {
            let from = f.from.clone().unwrap_or_else(|| "?".to_owned());
            vec![from, f.to.clone(), f.attempts.to_string()]
        })
        .collect();
    table(
        &mut out,
        "Failovers",
        &[("from", Left), ("to", Left), ("attempts", Right)],
        &failovers,
    );
    let codes: Vec<Vec<String>> = report
        .top_codes
        .iter()
        .map(|c| {
            let provider_code = c.provider_code.clone().unwrap_or_else(|| "-".to_owned());
            let attempts = c.attempts.to_string();
            vec![attempts, c.provider.clone(), c.code.clone(), provider_code]
        })
        .collect();
    table(
        &mut out,
        "Top codes (attempts that did not succeed)",
        &[
            ("attempts", Right),
            ("provider", Left),
            ("code", Left),
            ("provider code", Left),
        ],
        &codes,
    );
    // The provider is named on its first row only, so each provider's categories read as a block.
    let categories: Vec<Vec<String>> = report
        .categories
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let same = i > 0 && report.categories[i - 1].provider == c.provider;
            let provider = if same { "" } else { c.provider.as_str() };
            vec![
                provider.to_owned(),
                c.category.clone(),
                c.attempts.to_string(),
            ]
        })
        .collect();
    table(
        &mut out,
        "Attempts by provider and category",
        &[("provider", Left), ("category", Left), ("attempts", Right)],
        &categories,
    );
    out
}

/// The header and the totals, in sentences.
fn summary(out: &mut String, report: &Report, since: &str) {
    let t = &report.totals;
    let o = &t.outcomes;
    let _ = writeln!(
        out,
        "payerr report: last {since}, {} to {}\ndata dir: {}\n",
        time(report.window.from_ms),
        time(report.window.to_ms),
        report.data_dir
    );
    let _ = writeln!(
        out,
        "requests {}   approval rate {} ({} succeeded of {} decided)",
        t.requests,
        percent(t.approval_rate),
        o.succeeded,
        o.succeeded + o.failed
    );
    let _ = writeln!(
        out,
        "final outcomes: {} succeeded, {} failed, {} unknown, {} pending (the last two are not in \
         the rate)",
        o.succeeded, o.failed, o.unknown, o.pending
    );
    let _ = writeln!(
        out,
        "attempts {}: {} retries, {} failovers, {} polls, {} without response",
        t.attempts, t.retries, t.failovers, t.polls, t.no_response
    );
}

/// Two tables per provider, plus a row for all: requests by final outcome, then attempts.
fn providers(out: &mut String, report: &Report) {
    let all = std::iter::once(("(all)", &report.totals));
    let rows: Vec<_> = report
        .providers
        .iter()
        .map(|p| (p.provider.as_str(), &p.counts))
        .chain(all)
        .collect();
    let requests: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, c)| {
            let o = &c.outcomes;
            let mut row = vec![(*name).to_owned(), c.requests.to_string()];
            row.push(percent(c.approval_rate));
            row.extend([o.succeeded, o.failed, o.unknown, o.pending].map(|n| n.to_string()));
            row
        })
        .collect();
    table(
        out,
        "Requests by provider of their final attempt",
        &[
            ("provider", Left),
            ("requests", Right),
            ("approval", Right),
            ("succeeded", Right),
            ("failed", Right),
            ("unknown", Right),
            ("pending", Right),
        ],
        &requests,
    );
    let attempts: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, c)| {
            let mut row = vec![(*name).to_owned()];
            row.extend(
                [c.attempts, c.retries, c.failovers, c.polls, c.no_response].map(|n| n.to_string()),
            );
            row.extend([latency(c.latency_p50_us), latency(c.latency_p99_us)]);
            row
        })
        .collect();
    table(
        out,
        "Attempts by provider (latency per attempt, milliseconds)",
        &[
            ("provider", Left),
            ("attempts", Right),
            ("retries", Right),
            ("failovers", Right),
            ("polls", Right),
            ("no response", Right),
            ("p50", Right),
            ("p99", Right),
        ],
        &attempts,
    );
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}
use Align::{Left, Right};

/// A titled table: columns as wide as their widest cell, two spaces apart, no trailing spaces.
/// Nothing at all when there are no rows.
fn table(out: &mut String, title: &str, columns: &[(&str, Align)], rows: &[Vec<String>]) {
    if rows.is_empty() {
        return;
    }
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let cells = rows.iter().filter_map(|r| r.get(i));
            cells
                .map(|c| c.chars().count())
                .fold(name.len(), usize::max)
        })
        .collect();
    let _ = writeln!(out, "\n{title}");
    let header: Vec<String> = columns.iter().map(|(name, _)| (*name).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, ((_, align), width)) in columns.iter().zip(&widths).enumerate() {
            let cell = row.get(i).map_or("", String::as_str);
            let pad = width.saturating_sub(cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            match align {
                Left => {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// Microseconds as milliseconds with two decimals (local providers answer in well under 1 ms).
fn latency(us: Option<u64>) -> String {
    us.map_or_else(|| "-".to_owned(), |us| format!("{:.2}", us as f64 / 1000.0))
}

/// Unix milliseconds as UTC RFC 3339 (a time before 1970 shows as the epoch).
fn time(ms: i64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let mut out = String::new();
        let rows = vec![
            vec!["acme".to_owned(), "7".to_owned(), "x".to_owned()],
            vec!["b".to_owned(), "1234".to_owned(), "".to_owned()],
        ];
        table(
            &mut out,
            "T",
            &[("provider", Left), ("n", Right), ("note", Left)],
            &rows,
        );
        assert_eq!(
            out,
            "\nT\nprovider     n  note\nacme         7  x\nb         1234\n"
        );
    }

    #[test]
    fn rates_and_latencies_read_as_people_expect() {
        assert_eq!(percent(Some(0.5)), "50.0%");
        assert_eq!(percent(Some(2.0 / 3.0)), "66.7%");
        assert_eq!(percent(None), "-");
        assert_eq!(latency(Some(50)), "0.05");
        assert_eq!(latency(Some(10_000)), "10.00");
        assert_eq!(latency(None), "-");
        assert_eq!(time(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
    }
}
