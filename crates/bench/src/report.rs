//! Results: one `Report` per server a scenario ran against, a `Comparison` of
//! the service with the baseline (ratios of every shared figure), printed as a
//! table and written as JSON.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::latency::LatencySummary;

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamedLatency {
    pub name: String,
    #[serde(flatten)]
    pub summary: LatencySummary,
}

/// What one run of a scenario against one server measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub server: &'static str,
    pub url: String,
    pub figures: Vec<Figure>,
    pub latencies: Vec<NamedLatency>,
    /// Errors by kind (error frame codes, HTTP statuses, closed sockets…).
    pub errors: BTreeMap<String, u64>,
}

impl Report {
    pub fn new(server: &'static str, url: &str) -> Self {
        Self {
            server,
            url: url.to_owned(),
            figures: Vec::new(),
            latencies: Vec::new(),
            errors: BTreeMap::new(),
        }
    }

    pub fn figure(&mut self, name: &str, value: f64, unit: &'static str) {
        self.figures.push(Figure { name: name.to_owned(), value, unit });
    }

    pub fn latency(&mut self, name: &str, summary: LatencySummary) {
        self.latencies.push(NamedLatency { name: name.to_owned(), summary });
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.name == name).map(|f| f.value)
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A scenario's result: the service, and the baseline when it ran too.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub scenario: &'static str,
    pub parameters: serde_json::Value,
    /// What else ran on the machine is not known to the tool: the load average says a little.
    pub load_average: Option<String>,
    pub service: Report,
    pub baseline: Option<Report>,
    /// service ÷ baseline for every figure and latency percentile both have.
    pub ratios: BTreeMap<String, f64>,
}

impl Comparison {
    pub fn new(
        scenario: &'static str,
        parameters: serde_json::Value,
        service: Report,
        baseline: Option<Report>,
    ) -> Self {
        let ratios = baseline.as_ref().map(|b| ratios(&service, b)).unwrap_or_default();
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
        Self { scenario, parameters, load_average, service, baseline, ratios }
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// The summary table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let baseline = self.baseline.as_ref();
        out += &format!("scenario: {}  {}\n", self.scenario, self.parameters);
        out += &format!("service:  {}\n", self.service.url);
        if let Some(b) = baseline {
            out += &format!("baseline: {}\n", b.url);
        }
        if let Some(load) = &self.load_average {
            out += &format!("load average at the end: {load}\n");
        }
        out += &format!("\n{:<34} {:>14} {:>14} {:>8}\n", "figure", "service", "baseline", "ratio");
        for figure in &self.service.figures {
            let other = baseline.and_then(|b| b.get(&figure.name));
            out += &format!(
                "{:<34} {:>14} {:>14} {:>8}\n",
                format!("{} ({})", figure.name, figure.unit),
                number(figure.value),
                other.map_or_else(|| "-".to_owned(), number),
                self.ratios.get(&figure.name).map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
            );
        }
        if !self.service.latencies.is_empty() {
            out += &format!(
                "\n{:<34} {:>9} {:>8} {:>8} {:>8} {:>8}\n",
                "latency (ms)", "count", "p50", "p90", "p99", "max"
            );
            let reports = std::iter::once(&self.service).chain(baseline);
            for report in reports {
                for latency in &report.latencies {
                    let s = latency.summary;
                    out += &format!(
                        "{:<34} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.2}\n",
                        format!("{} [{}]", latency.name, report.server),
                        s.count,
                        s.p50_ms,
                        s.p90_ms,
                        s.p99_ms,
                        s.max_ms
                    );
                }
            }
        }
        for report in std::iter::once(&self.service).chain(baseline) {
            let errors = if report.errors.is_empty() {
                "none".to_owned()
            } else {
                report.errors.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
            };
            out += &format!("errors [{}]: {errors}\n", report.server);
        }
        out
    }

    pub fn print(&self) {
        let _ = std::io::stdout().write_all(self.render().as_bytes());
    }
}

fn ratios(service: &Report, baseline: &Report) -> BTreeMap<String, f64> {
    let mut ratios = BTreeMap::new();
    for figure in &service.figures {
        if let Some(base) = baseline.get(&figure.name)
            && base != 0.0
        {
            ratios.insert(figure.name.clone(), figure.value / base);
        }
    }
    for latency in &service.latencies {
        let Some(base) = baseline.latencies.iter().find(|l| l.name == latency.name) else {
            continue;
        };
        for (label, ours, theirs) in [
            ("p50", latency.summary.p50_ms, base.summary.p50_ms),
            ("p99", latency.summary.p99_ms, base.summary.p99_ms),
        ] {
            if theirs > 0.0 {
                ratios.insert(format!("{} {label}", latency.name), ours / theirs);
            }
        }
    }
    ratios
}

/// 12345.6 → "12,346"; small values keep two decimals.
pub fn number(value: f64) -> String {
    if value.abs() < 100.0 && value.fract() != 0.0 {
        return format!("{value:.2}");
    }
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if rounded < 0 { format!("-{grouped}") } else { grouped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(p50: f64, p99: f64) -> LatencySummary {
        LatencySummary {
            count: 10,
            p50_ms: p50,
            p90_ms: p50,
            p99_ms: p99,
            max_ms: p99,
            mean_ms: p50,
        }
    }

    #[test]
    fn ratios_compare_shared_figures_and_percentiles() {
        let mut service = Report::new("service", "http://a");
        service.figure("acked/s", 5000.0, "msg/s");
        service.figure("only here", 1.0, "x");
        service.latency("send→delivery", summary(4.0, 30.0));
        let mut baseline = Report::new("baseline", "http://b");
        baseline.figure("acked/s", 10000.0, "msg/s");
        baseline.latency("send→delivery", summary(1.0, 10.0));
        let comparison =
            Comparison::new("throughput", serde_json::json!({}), service, Some(baseline));
        assert_eq!(comparison.ratios.get("acked/s"), Some(&0.5));
        assert_eq!(comparison.ratios.get("send→delivery p50"), Some(&4.0));
        assert_eq!(comparison.ratios.get("send→delivery p99"), Some(&3.0));
        assert!(!comparison.ratios.contains_key("only here"));
        let table = comparison.render();
        assert!(table.contains("acked/s (msg/s)"), "{table}");
        assert!(table.contains("0.50"), "{table}");
        let json = serde_json::to_value(&comparison).unwrap();
        assert_eq!(json["service"]["figures"][0]["value"], 5000.0);
        assert_eq!(json["baseline"]["latencies"][0]["p99_ms"], 10.0);
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(number(1234567.4), "1,234,567");
        assert_eq!(number(999.0), "999");
        assert_eq!(number(2.345), "2.35");
        assert_eq!(number(-4200.0), "-4,200");
    }
}
