import Foundation
import Synchronization

/// Prometheus metrics kept in memory.
final class Metrics: Sendable {
    static let buckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    private struct Series { var counts = [Int](repeating: 0, count: Metrics.buckets.count + 1); var sum = 0.0; var total = 0 }
    private let requests = Mutex<[String: Int]>([:])        // "route|status" -> count
    private let latency = Mutex<[String: Series]>([:])      // route -> histogram

    func record(route: String, status: Int, seconds: Double) {
        requests.withLock { $0["\(route)|\(status)", default: 0] += 1 }
        latency.withLock { l in
            var s = l[route] ?? Series()
            let i = Metrics.buckets.firstIndex { seconds <= $0 } ?? Metrics.buckets.count
            s.counts[i] += 1
            s.sum += seconds
            s.total += 1
            l[route] = s
        }
    }

    static func label(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: " ")
    }

    /// A figure read at scrape time (pool use, lag...), with what Prometheus needs to know of it.
    struct Sample {
        enum Kind: String { case gauge, counter }
        let name: String
        let kind: Kind
        let help: String
        var labels = ""
        let value: Double
    }

    func render(extra: [Sample]) -> String {
        var out = "# HELP coord_http_requests_total HTTP requests by route and status.\n# TYPE coord_http_requests_total counter\n"
        for (key, n) in requests.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|", maxSplits: 1)
            out += "coord_http_requests_total{route=\"\(Self.label(String(parts[0])))\",status=\"\(parts[1])\"} \(n)\n"
        }
        out += "# HELP coord_http_request_duration_seconds Request latency by route.\n# TYPE coord_http_request_duration_seconds histogram\n"
        for (route, s) in latency.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            var cumulative = 0
            for (i, bound) in Metrics.buckets.enumerated() {
                cumulative += s.counts[i]
                out += "coord_http_request_duration_seconds_bucket{route=\"\(Self.label(route))\",le=\"\(bound)\"} \(cumulative)\n"
            }
            out += "coord_http_request_duration_seconds_bucket{route=\"\(Self.label(route))\",le=\"+Inf\"} \(s.total)\n"
            out += "coord_http_request_duration_seconds_sum{route=\"\(Self.label(route))\"} \(s.sum)\n"
            out += "coord_http_request_duration_seconds_count{route=\"\(Self.label(route))\"} \(s.total)\n"
        }
        // Every sample of one name together, under one HELP and TYPE (the exposition format wants them grouped).
        var order: [String] = []
        var byName: [String: [Sample]] = [:]
        for sample in extra {
            if byName[sample.name] == nil { order.append(sample.name) }
            byName[sample.name, default: []].append(sample)
        }
        for name in order {
            let samples = byName[name]!
            out += "# HELP \(name) \(samples[0].help)\n# TYPE \(name) \(samples[0].kind.rawValue)\n"
            for s in samples {
                let value = s.value == s.value.rounded() && abs(s.value) < 1e15 ? String(Int64(s.value)) : String(s.value)
                out += s.labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(s.labels)} \(value)\n"
            }
        }
        return out
    }
}
