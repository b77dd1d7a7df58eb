import Events
import Foundation

/// An HTTP/1.1 request as the decoder produced it.
struct HTTPRequest: Sendable {
    var method: String
    /// The request target as sent: path and optional query.
    var target: String
    var version: String
    /// Header names lower-cased, in order.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    var path: String {
        if let q = target.firstIndex(of: "?") { return String(target[..<q]) }
        return target
    }

    /// Query parameters, percent-decoded. A parameter that cannot be read (an escape that is not UTF-8, a NUL, a
    /// name given twice) is an error rather than a filter silently dropped.
    func queryParameters() throws(QueryError) -> [String: String] {
        guard let q = target.firstIndex(of: "?") else { return [:] }
        var out: [String: String] = [:]
        for pair in target[target.index(after: q)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = Self.percentDecode(parts[0]), !key.isEmpty else { throw QueryError(name: nil, reason: "a parameter name is not valid") }
            guard let value = parts.count > 1 ? Self.percentDecode(parts[1]) : "" else {
                throw QueryError(name: key, reason: "is not valid percent-encoded UTF-8")
            }
            if key.utf8.contains(0) || value.utf8.contains(0) { throw QueryError(name: key, reason: "contains a NUL character") }
            if out[key] != nil { throw QueryError(name: key, reason: "is given more than once") }
            out[key] = value
        }
        return out
    }

    /// A query component: `+` is a space, then `%XX` escapes are decoded.
    static func percentDecode(_ s: some StringProtocol) -> String? { PercentEncoding.decode(s, plusAsSpace: true) }

    /// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 closes unless `keep-alive`.
    var keepAlive: Bool {
        let connection = header("connection")?.lowercased() ?? ""
        if version == "HTTP/1.0" { return connection.contains("keep-alive") }
        return !connection.contains("close")
    }
}

/// Percent-decoding on bytes, as Foundation's `removingPercentEncoding` does it (nil for a `%` without two hex
/// digits after it, or for bytes that are not UTF-8) without its round trip through NSString.
enum PercentEncoding {
    static func decode(_ s: some StringProtocol, plusAsSpace: Bool = false) -> String? {
        let utf8 = s.utf8
        guard utf8.contains(where: { $0 == 0x25 || (plusAsSpace && $0 == 0x2b) }) else { return String(s) }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let b = utf8[i]
            if b == 0x25 {
                let h = utf8.index(after: i)
                guard h != utf8.endIndex, let high = hex(utf8[h]) else { return nil }
                let l = utf8.index(after: h)
                guard l != utf8.endIndex, let low = hex(utf8[l]) else { return nil }
                out.append(high << 4 | low)
                i = utf8.index(after: l)
                continue
            }
            out.append(plusAsSpace && b == 0x2b ? 0x20 : b)
            i = utf8.index(after: i)
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
}

/// A query string that cannot be read: the request is refused (400) naming the parameter.
struct QueryError: Error, Equatable {
    let name: String?
    let reason: String
}
