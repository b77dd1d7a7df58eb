import Foundation
import Synchronization

/// A structured logger: one line per record,
/// `2026-11-29T10:00:00.123Z info coordd: http.status=201 request.id=abc appended`, keys sorted.
///
/// Libraries take a logger from their caller and never print. Never put personal data or tokens in
/// metadata or messages: log identifiers (positions, stream names, request ids), not people.
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
        case trace, debug, info, notice, warning, error, critical
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public var description: String {
            switch self {
            case .trace: "trace"
            case .debug: "debug"
            case .info: "info"
            case .notice: "notice"
            case .warning: "warning"
            case .error: "error"
            case .critical: "critical"
            }
        }
        public init?(name: String) {
            guard let level = Level.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
            self = level
        }
    }

    public typealias Metadata = [String: String]

    public let label: String
    public var level: Level
    public var metadata: Metadata
    private let sink: @Sendable (String) -> Void

    /// Writes to standard error (unbuffered, one `write` per line so lines never interleave).
    public init(label: String, level: Level = .info, metadata: Metadata = [:]) {
        self.init(label: label, level: level, metadata: metadata) { line in
            var bytes = Array((line + "\n").utf8)
            bytes.withUnsafeMutableBytes { _ = fputs_unlocked_write($0) }
        }
    }

    public init(label: String, level: Level = .info, metadata: Metadata = [:], sink: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.level = level
        self.metadata = metadata
        self.sink = sink
    }

    /// A logger that drops everything.
    public static let silent = Logger(label: "silent", level: .critical) { _ in }

    public func with(_ extra: Metadata) -> Logger {
        var copy = self
        copy.metadata.merge(extra) { _, new in new }
        return copy
    }

    public func log(_ level: Level, _ message: @autoclosure () -> String, _ extra: Metadata = [:]) {
        guard level >= self.level else { return }
        var all = metadata
        all.merge(extra) { _, new in new }
        var line = Timestamp.format(Date()) + " " + level.description + " " + label + ":"
        for key in all.keys.sorted() {
            line += " " + key + "=" + Self.quoteIfNeeded(all[key]!)
        }
        let text = message()
        if !text.isEmpty { line += " " + Self.sanitize(text) }
        sink(line)
    }

    public func trace(_ m: @autoclosure () -> String, _ extra: Metadata = [:]) { log(.trace, m(), extra) }
    public func debug(_ m: @autoclosure () -> String, _ extra: Metadata = [:]) { log(.debug, m(), extra) }
    public func info(_ m: @autoclosure () -> String, _ extra: Metadata = [:]) { log(.info, m(), extra) }
    public func notice(_ m: @autoclosure () -> String, _ extra: Metadata = [:]) { log(.notice, m(), extra) }
    public func warning(_ m: @autoclosure () -> String, _ extra: Metadata = [:]) { log(.warning, m(), extra) }
    public func error(_ m: @autoclosure () -> String, _ extra: Metadata = [:]) { log(.error, m(), extra) }
    public func critical(_ m: @autoclosure () -> String, _ extra: Metadata = [:]) { log(.critical, m(), extra) }

    /// Keeps a record on one line: control characters become spaces.
    static func sanitize(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
    }

    static func quoteIfNeeded(_ value: String) -> String {
        let clean = sanitize(value)
        if !clean.isEmpty, !clean.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) { return clean }
        return JSONWriter.quote(clean)
    }
}

private func fputs_unlocked_write(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
    var offset = 0
    while offset < buffer.count {
        let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
        if n < 0 { if errno == EINTR { continue }; return offset }
        offset += n
    }
    return offset
}
