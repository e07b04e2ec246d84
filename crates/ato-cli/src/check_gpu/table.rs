//! The rows of `ato check-gpu`: a measured figure beside its limit, the pass/fail rule for
//! numerical differences, and the one table printed at the end.

/// What a row says about the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Within its tolerance, or a run that finished.
    Ok,
    /// Out of tolerance, or a run that failed: the command exits non-zero.
    Fail,
    /// A figure with no pass/fail rule (a benchmark), or a part that was skipped.
    Info,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fail => "FAIL",
            Status::Info => "-",
        }
    }
}

/// One line of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `numerics`, `bench`, `demo` or `pytorch`.
    pub part: &'static str,
    pub item: String,
    pub measured: String,
    pub limit: String,
    pub status: Status,
}

impl Row {
    pub fn info(part: &'static str, item: impl Into<String>, measured: impl Into<String>) -> Self {
        Self {
            part,
            item: item.into(),
            measured: measured.into(),
            limit: String::new(),
            status: Status::Info,
        }
    }

    pub fn failed(part: &'static str, item: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            part,
            item: item.into(),
            measured: why.into(),
            limit: String::new(),
            status: Status::Fail,
        }
    }
}

/// The largest difference between two tensors relative to the reference's magnitude:
/// `max|a - b| / max(max|b|, floor)`. The floor keeps an all-zero reference (a dead gradient)
/// from turning rounding noise into an infinite ratio.
pub fn relative_max_diff(a: &[f32], b: &[f32], floor: f32) -> f32 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in size");
    let mut diff = 0f32;
    let mut scale = floor;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        // NaN on either side must fail, never compare as small.
        diff = if d.is_nan() {
            f32::INFINITY
        } else {
            diff.max(d)
        };
        scale = scale.max(y.abs());
    }
    diff / scale
}

/// A numerics row: `rel` against `tolerance` (a NaN or infinite difference fails).
pub fn tolerance_row(item: impl Into<String>, rel: f32, tolerance: f32, detail: &str) -> Row {
    let ok = rel.is_finite() && rel <= tolerance;
    Row {
        part: "numerics",
        item: item.into(),
        measured: if detail.is_empty() {
            format!("{rel:.2e}")
        } else {
            format!("{rel:.2e} ({detail})")
        },
        limit: format!("<= {tolerance:.0e}"),
        status: if ok { Status::Ok } else { Status::Fail },
    }
}

/// Whether any row failed.
pub fn any_failed(rows: &[Row]) -> bool {
    rows.iter().any(|r| r.status == Status::Fail)
}

/// The table as text: a header, aligned columns, then a verdict line.
pub fn render(rows: &[Row]) -> String {
    let header = ["part", "item", "measured", "limit", "status"];
    let cells: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.part,
                r.item.as_str(),
                r.measured.as_str(),
                r.limit.as_str(),
                r.status.as_str(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: [&str; 5]| {
        let parts: Vec<String> = c
            .iter()
            .zip(width)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    out += &line(width.map(|w| "-".repeat(w)).each_ref().map(String::as_str));
    for c in cells {
        out += &line(c);
    }
    let failed = rows.iter().filter(|r| r.status == Status::Fail).count();
    out += &if failed == 0 {
        format!("all {} checks passed\n", rows.len())
    } else {
        format!("{failed} of {} checks FAILED\n", rows.len())
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_difference_is_scaled_by_the_reference_and_floored() {
        // max|a-b| = 0.5 (third element), max|b| = 4 → 0.125.
        assert_eq!(
            relative_max_diff(&[1.0, -2.0, 3.5], &[1.0, -2.0, 4.0], 1e-6),
            0.125
        );
        // An all-zero reference: the floor (1e-3) is the scale, 1e-6 / 1e-3 = 1e-3.
        let r = relative_max_diff(&[1e-6, 0.0], &[0.0, 0.0], 1e-3);
        assert!((r - 1e-3).abs() < 1e-9, "{r}");
        assert_eq!(relative_max_diff(&[f32::NAN], &[1.0], 1e-6), f32::INFINITY);
    }

    #[test]
    fn out_of_tolerance_difference_fails_and_the_verdict_says_so() {
        let good = tolerance_row("resnet20 logits", 2e-5, 1e-4, "");
        assert_eq!(good.status, Status::Ok);
        assert_eq!(good.limit, "<= 1e-4");
        // Negative control: twice the tolerance must fail, and so must NaN.
        let bad = tolerance_row("resnet20 grads", 2e-4, 1e-4, "worst conv1.weight");
        assert_eq!(bad.status, Status::Fail);
        assert_eq!(bad.measured, "2.00e-4 (worst conv1.weight)");
        assert_eq!(tolerance_row("x", f32::NAN, 1e-4, "").status, Status::Fail);
        let rows = vec![
            good.clone(),
            Row::info("bench", "train resnet56", "10 img/s"),
        ];
        assert!(!any_failed(&rows));
        assert!(render(&rows).ends_with("all 2 checks passed\n"));
        let rows = vec![good, bad];
        assert!(any_failed(&rows));
        let table = render(&rows);
        assert!(table.ends_with("1 of 2 checks FAILED\n"), "{table}");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "part      item             measured                      limit    status"
        );
        assert!(
            lines[3].starts_with(
                "numerics  resnet20 grads   2.00e-4 (worst conv1.weight)  <= 1e-4  FAIL"
            ),
            "{table}"
        );
    }
}
