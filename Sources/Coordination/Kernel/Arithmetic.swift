/// Sums that grow with the log (balances, totals, durations) never trap: input is bounded (`Validator`), and a
/// figure computed over a log written by another binary saturates instead of crashing the process.
extension Int64 {
    /// `a + b`, held at `Int64.min`/`Int64.max` instead of overflowing.
    static func clamping(_ a: Int64, plus b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }
}

extension Int64 {
    /// `self += b`, saturating.
    mutating func add(_ b: Int64) { self = .clamping(self, plus: b) }

    /// `self -= b`, saturating (`-Int64.min` is not negated).
    mutating func subtract(_ b: Int64) {
        let (difference, overflow) = subtractingReportingOverflow(b)
        self = overflow ? (b > 0 ? .min : .max) : difference
    }
}
