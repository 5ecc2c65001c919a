//! Charts drawn on the server as SVG with `maud` (no plotting crate: see docs/OVERSIGHT.md,
//! "Charts"): rates per month against the target line, money collected per day by channel,
//! and the treasury's amounts overdue and not yet due. Coordinates are computed with exact
//! decimals (the workspace forbids float arithmetic) and printed with one decimal. The same SVG
//! is served as `image/svg+xml` and inlined in the printable pages.

use maud::{Markup, html};
use rust_decimal::{Decimal, RoundingStrategy};

const WIDTH: i64 = 720;
const HEIGHT: i64 = 260;
const LEFT: i64 = 64;
const RIGHT: i64 = 16;
const TOP: i64 = 36;
const BOTTOM: i64 = 44;

/// Colours that stay apart in greyscale print too.
pub const BLUE: &str = "#1f5fa8";
pub const GREEN: &str = "#2e8540";
pub const ORANGE: &str = "#d9822b";
pub const RED: &str = "#b3261e";
pub const GREY: &str = "#6b7280";
pub const PURPLE: &str = "#6a3d9a";

fn num(value: Decimal) -> String {
    value.round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero).normalize().to_string()
}

fn plot_width() -> Decimal {
    Decimal::from(WIDTH - LEFT - RIGHT)
}

fn plot_height() -> Decimal {
    Decimal::from(HEIGHT - TOP - BOTTOM)
}

/// The x of the centre of slot `i` of `n`.
fn slot_x(i: usize, n: usize) -> Decimal {
    let n = Decimal::from(n.max(1));
    Decimal::from(LEFT) + plot_width() * (Decimal::from(i) + Decimal::new(5, 1)) / n
}

/// The y of `value` on a 0..=`max` axis.
fn y_of(value: Decimal, max: Decimal) -> Decimal {
    let max = if max <= Decimal::ZERO { Decimal::ONE } else { max };
    let clamped = value.max(Decimal::ZERO).min(max);
    Decimal::from(TOP) + plot_height() * (max - clamped) / max
}

/// One line of a line chart; `None` values leave a gap.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<Option<Decimal>>,
    /// A target line: dashed, without dots.
    pub dashed: bool,
}

fn frame(title: &str, aria: &str, body: Markup, legend: &[(String, &'static str, bool)]) -> Markup {
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width=(WIDTH) height=(HEIGHT)
            role="img" aria-label=(aria) class="chart" font-family="sans-serif" font-size="11" {
            title { (title) }
            rect x="0" y="0" width=(WIDTH) height=(HEIGHT) fill="#ffffff" {}
            text x=(LEFT) y="16" font-size="13" font-weight="bold" fill="#111827" { (title) }
            @for (lx, (name, color, dashed)) in legend_positions(legend) {
                line x1=(lx) y1="26" x2=(lx + 18) y2="26" stroke=(color) stroke-width="3"
                    stroke-dasharray=[dashed.then_some("5 3")] {}
                text x=(lx + 22) y="30" fill="#374151" { (name) }
            }
            (body)
        }
    }
}

/// Where each legend entry starts, left to right after the title's left edge.
fn legend_positions(legend: &[(String, &'static str, bool)]) -> Vec<(i64, (String, &'static str, bool))> {
    let mut x = LEFT;
    legend
        .iter()
        .map(|entry| {
            let at = x;
            x += 40 + i64::try_from(entry.0.chars().count()).unwrap_or(10) * 6;
            (at, entry.clone())
        })
        .collect()
}

/// Horizontal grid lines and their labels for a 0..=max axis in `ticks` steps.
fn grid(max: Decimal, ticks: u32, label: impl Fn(Decimal) -> String) -> Markup {
    html! {
        @for i in 0..=ticks {
            @let value = max * Decimal::from(i) / Decimal::from(ticks.max(1));
            @let y = num(y_of(value, max));
            line x1=(LEFT) y1=(y) x2=(WIDTH - RIGHT) y2=(y) stroke="#e5e7eb" stroke-width="1" {}
            text x=(LEFT - 6) y=(y) dy="4" text-anchor="end" fill="#6b7280" { (label(value)) }
        }
    }
}

/// x-axis labels, thinned so that at most about twelve are printed.
fn x_labels(labels: &[String]) -> Markup {
    let every = labels.len().div_ceil(12).max(1);
    html! {
        @for (i, label) in labels.iter().enumerate() {
            @if i % every == 0 {
                text x=(num(slot_x(i, labels.len()))) y=(HEIGHT - BOTTOM + 16) text-anchor="middle" fill="#374151" { (label) }
            }
        }
        line x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH - RIGHT) y2=(HEIGHT - BOTTOM) stroke="#9ca3af" {}
    }
}

/// Percentages (0–100 %) per period, e.g. the cashless and online rates against their targets.
pub fn percent_lines(title: &str, labels: &[String], lines: &[Line]) -> Markup {
    let max = Decimal::ONE_HUNDRED;
    let legend: Vec<(String, &'static str, bool)> = lines.iter().map(|l| (l.name.clone(), l.color, l.dashed)).collect();
    let body = html! {
        (grid(max, 4, |v| format!("{}%", v.normalize())))
        (x_labels(labels))
        @for line in lines {
            @for segment in segments(&line.values) {
                @let points: Vec<String> = segment.iter()
                    .map(|(i, v)| format!("{},{}", num(slot_x(*i, labels.len())), num(y_of(*v, max))))
                    .collect();
                @if points.len() > 1 {
                    polyline points=(points.join(" ")) fill="none" stroke=(line.color) stroke-width="2.5"
                        stroke-dasharray=[line.dashed.then_some("6 4")] {}
                }
                @if !line.dashed {
                    @for (i, v) in &segment {
                        circle cx=(num(slot_x(*i, labels.len()))) cy=(num(y_of(*v, max))) r="3.5" fill=(line.color) {
                            title { (line.name) " " (labels.get(*i).map_or("", String::as_str)) ": " (v.normalize()) "%" }
                        }
                    }
                }
            }
        }
    };
    frame(title, title, body, &legend)
}

/// Runs of consecutive present values, with their indexes.
fn segments(values: &[Option<Decimal>]) -> Vec<Vec<(usize, Decimal)>> {
    let mut out: Vec<Vec<(usize, Decimal)>> = Vec::new();
    let mut current = Vec::new();
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) => current.push((i, *v)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A round axis maximum at or above `value` (1, 2 or 5 × 10ⁿ).
fn nice_max(value: i64) -> i64 {
    let mut scale = 1i64;
    loop {
        for step in [1, 2, 5] {
            let candidate = step * scale;
            if candidate >= value {
                return candidate.max(1);
            }
        }
        match scale.checked_mul(10) {
            Some(next) => scale = next,
            None => return i64::MAX,
        }
    }
}

/// Đồng in a short Vietnamese form: "850 nghìn", "1,2 tr", "3 tỷ".
pub fn short_dong(value: Decimal) -> String {
    let (divisor, unit) = if value >= Decimal::from(1_000_000_000) {
        (Decimal::from(1_000_000_000), " tỷ")
    } else if value >= Decimal::from(1_000_000) {
        (Decimal::from(1_000_000), " tr")
    } else if value >= Decimal::from(1_000) {
        (Decimal::from(1_000), " nghìn")
    } else {
        (Decimal::ONE, " đ")
    };
    let shown = (value / divisor).round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero).normalize();
    format!("{}{unit}", shown.to_string().replace('.', ","))
}

/// One stack of a bar chart: its name, colour and a value per slot.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<i64>,
}

/// Stacked bars of đồng per slot (e.g. collected per day by channel).
pub fn stacked_bars(title: &str, labels: &[String], stacks: &[Stack]) -> Markup {
    let totals: Vec<i64> = (0..labels.len())
        .map(|i| stacks.iter().map(|s| s.values.get(i).copied().unwrap_or(0).max(0)).fold(0i64, i64::saturating_add))
        .collect();
    let max = Decimal::from(nice_max(totals.iter().copied().max().unwrap_or(0)));
    let legend: Vec<(String, &'static str, bool)> = stacks.iter().map(|s| (s.name.clone(), s.color, false)).collect();
    let slot = plot_width() / Decimal::from(labels.len().max(1));
    let bar = (slot * Decimal::new(7, 1)).max(Decimal::ONE);
    let body = html! {
        (grid(max, 4, short_dong))
        (x_labels(labels))
        @for (i, pieces) in bar_pieces(labels.len(), stacks).into_iter().enumerate() {
            @for (stack, base, value) in pieces {
                @let top = y_of(base + value, max);
                @let bottom = y_of(base, max);
                rect x=(num(slot_x(i, labels.len()) - bar / Decimal::TWO)) y=(num(top)) width=(num(bar))
                    height=(num((bottom - top).max(Decimal::new(5, 1)))) fill=(stack.color) {
                    title { (labels[i]) " · " (stack.name) ": " (short_dong(value)) }
                }
            }
        }
    };
    frame(title, title, body, &legend)
}

/// Per slot, each stack's piece: the stack, where it starts and its height (positive only).
fn bar_pieces(slots: usize, stacks: &[Stack]) -> Vec<Vec<(&Stack, Decimal, Decimal)>> {
    (0..slots)
        .map(|i| {
            let mut base = Decimal::ZERO;
            let mut pieces = Vec::new();
            for stack in stacks {
                let value = Decimal::from(stack.values.get(i).copied().unwrap_or(0).max(0));
                if value > Decimal::ZERO {
                    pieces.push((stack, base, value));
                    base += value;
                }
            }
            pieces
        })
        .collect()
}
