import Foundation

/// Where the hash chain stood at a moment: a position and its hash, kept outside the database (a file on
/// another disk, the log shipped elsewhere) so that a superuser who rewrites the log and recomputes the chain,
/// or cuts its tail and moves the head back, is still caught: the anchored hashes no longer match.
/// `mac` is an HMAC-SHA256 over `position:hash:recorded_at` with a key the database never sees, so an anchor
/// cannot be forged either.
public struct ChainAnchor: Sendable, Equatable {
    public let position: Int64
    public let hash: String
    public let recordedAt: Date
    public var mac: String?

    public init(position: Int64, hash: String, recordedAt: Date, mac: String? = nil) {
        (self.position, self.hash, self.recordedAt, self.mac) = (position, hash, recordedAt, mac)
    }

    var signedText: String { "\(position):\(hash):\(Timestamp.format(recordedAt))" }

    /// Signed with `key` (none: unsigned).
    public func signed(_ key: [UInt8]?) -> ChainAnchor {
        var copy = self
        copy.mac = key.map { Hex.string(HMAC.sha256(key: $0, message: Array(signedText.utf8))) }
        return copy
    }

    /// One JSON line: `{"anchor":{"position":N,"hash":"..","recorded_at":"..","mac":".."}}`.
    public var line: String {
        "{\"anchor\":{\"position\":\(position),\"hash\":\"\(hash)\",\"recorded_at\":\"\(Timestamp.format(recordedAt))\""
            + (mac.map { ",\"mac\":\"\($0)\"" } ?? "") + "}}"
    }

    /// An anchor from a line of an anchor file, or from a coordd log line that carries one (after `chain anchor`).
    public init?(line: String) {
        guard let start = line.range(of: "{\"anchor\":"), let value = try? JSONValue.parse(Data(line[start.lowerBound...].utf8)),
              let a = value["anchor"], case .number(let p)? = a["position"], let position = Int64(p),
              case .string(let hash)? = a["hash"], case .string(let at)? = a["recorded_at"], let recorded = Timestamp.parse(at) else { return nil }
        var mac: String?
        if case .string(let m)? = a["mac"] { mac = m }
        self.init(position: position, hash: hash, recordedAt: recorded, mac: mac)
    }

    /// Whether `mac` is the MAC `key` gives.
    public func isSigned(by key: [UInt8]) -> Bool {
        guard let mac, let given = Hex.bytes(mac.utf8) else { return false }
        return HMAC.equal(given, HMAC.sha256(key: key, message: Array(signedText.utf8)))
    }
}

extension EventStore {
    /// The chain's tip now, as an anchor.
    public func anchor(key: [UInt8]? = nil) async throws -> ChainAnchor {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            let r = try c.query("SELECT position, encode(hash, 'hex'), clock_timestamp() FROM event_head")
            return ChainAnchor(position: try r.decode(0, 0), hash: try r.decode(0, 1), recordedAt: try r.decode(0, 2)).signed(key)
        }
    }

    /// What is wrong with each anchor against the log: a missing position (the tail was cut), another hash (the log
    /// was rewritten and its chain recomputed), or a MAC that `key` does not give (a forged anchor). Empty: every
    /// anchored head is still in the log.
    public func check(anchors: [ChainAnchor], key: [UInt8]?) async throws -> [(anchor: ChainAnchor, problem: String)] {
        var problems: [(ChainAnchor, String)] = []
        if let key { for a in anchors where !a.isSigned(by: key) { problems.append((a, "its MAC does not verify with the anchor key")) } }
        let positions = anchors.map(\.position).filter { $0 > 0 }
        let stored: [Int64: String] = try await pool.withConnection(retryOnConnectionFailure: true) { c in
            var out: [Int64: String] = [:]
            for row in try c.query("SELECT position, encode(hash, 'hex') FROM events WHERE position = ANY(\(positions)::bigint[])").rows {
                out[try row.decode(0)] = try row.decode(1)
            }
            return out
        }
        for a in anchors where a.position > 0 {
            switch stored[a.position] {
            case nil: problems.append((a, "position \(a.position) is no longer in the log (its tail was cut)"))
            case let hash? where hash != a.hash: problems.append((a, "position \(a.position) has another hash (the log was rewritten)"))
            default: break
            }
        }
        return problems
    }

    /// What the chain does not cover: every stream row against its events, the head against the last event, the
    /// projections' checkpoints against the head. Empty when all agree.
    public func verifyState(limit: Int = 100) async throws -> [(problem: String, subject: String)] {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            try c.query("SELECT problem, subject FROM coord_verify_state(\(limit))").rows.map { (try $0.decode(0), try $0.decode(1)) }
        }
    }
}
