import Coordination
import Foundation
import Synchronization

/// Where one JSON list answer may be found and kept, and the tag that names it.
struct ListSlot {
    let cache: ListCache
    let key: String
    let marks: [UInt64]

    /// A weak ETag naming the answer by what made it, not by its bytes: this cache (a random nonce, so a
    /// restart or another coordd never reissues a tag), the projections' marks and the key. A client that sends
    /// it back in `If-None-Match` while the marks are unchanged holds what the tables would answer: 304.
    var etag: String {
        var hasher = Hasher()
        hasher.combine(key)
        let digest = UInt64(bitPattern: Int64(hasher.finalize()))
        return "W/\"" + cache.nonce + "-" + marks.map { String($0, radix: 36) }.joined(separator: ".") + "-"
            + String(digest, radix: 36) + "\""
    }
}

/// JSON list answers kept in memory and served again while the read models they came from are unchanged
/// (docs/HTTP.md, "List answers served again").
///
/// An answer is stored under what made it: the list, every query parameter, what the caller may see (personal data,
/// the resolved scope), the day date-relative filters were judged on, and the change marks of the projections the
/// list reads (`ProjectionRunner.changeMarks`), taken before the query ran. It is served while those marks are
/// unchanged: this process leads those projections, and no batch has committed into their tables since. A mark
/// is odd from just before a commit until after it, and no answer is kept or served under an odd mark, so once a
/// commit is visible to any reader no answer kept before it is current. Nothing is cached where the marks cannot
/// vouch for the tables: reads from a standby (it trails the primary the marks describe), projections another
/// process leads, reads with `Coord-Min-Position` (the caller waited on the stored checkpoints), and pages of
/// personal data for a caller who may see it (each such read is recorded).
final class ListCache: Sendable {
    /// This cache's (this process's) part of every list tag.
    let nonce = String(UInt64.random(in: 0...UInt64.max), radix: 36)

    struct Entry {
        let marks: [UInt64]
        let body: [UInt8]
        /// The body gzipped, once a client that accepts gzip has asked for it.
        var gzipped: [UInt8]?
    }

    private struct Store {
        var entries: [String: Entry] = [:]
        var bytes = 0
    }

    /// At most this many answers, this many bytes of them, each at most `largest`.
    let capacity: Int
    let byteCapacity: Int
    let largest: Int
    private let store = Mutex(Store())
    private let counts = Mutex((hits: 0, misses: 0))

    init(capacity: Int = 512, byteCapacity: Int = 16 << 20, largest: Int = 1 << 20) {
        (self.capacity, self.byteCapacity, self.largest) = (capacity, byteCapacity, largest)
    }

    /// The key of one answer: the list, the query parameters in order, what the caller may see, the day.
    static func key(list: String, query: [String: String], personalData: Bool, scope: ReadScope?, today: Day) -> String {
        var key = list
        for (name, value) in query.sorted(by: { $0.key < $1.key }) {
            key += "\u{1}" + name + "=" + value
        }
        key += "\u{1}personal=" + (personalData ? "1" : "0") + "\u{1}today=" + today.description
        if let scope {
            key += "\u{1}warehouses=" + scope.warehouses.sorted().joined(separator: ",")
            key += "\u{1}responses=" + scope.responses.sorted().joined(separator: ",")
        }
        return key
    }

    /// The stored answer for `key` if it was made under `marks`; counts a hit or a miss.
    func answer(_ key: String, marks: [UInt64]) -> Entry? {
        let entry = store.withLock { s -> Entry? in
            guard let e = s.entries[key], e.marks == marks else { return nil }
            return e
        }
        counts.withLock { entry == nil ? ($0.misses += 1) : ($0.hits += 1) }
        return entry
    }

    /// Keeps the gzip of the answer for `key` made under `marks`, if that answer is still the one kept.
    func keepGzipped(_ key: String, marks: [UInt64], _ gzipped: [UInt8]) {
        store.withLock { s in
            guard s.entries[key]?.marks == marks, s.entries[key]?.gzipped == nil, s.bytes + gzipped.count <= byteCapacity else { return }
            s.entries[key]?.gzipped = gzipped
            s.bytes += gzipped.count
        }
    }

    /// Keeps `body` for `key`, made under `marks`. When full, every answer goes (most are stale by then: each
    /// batch a projection commits leaves its lists' answers behind): the next requests refill what is still asked for.
    func keep(_ key: String, marks: [UInt64], body: [UInt8]) {
        guard body.count <= largest else { return }
        store.withLock { s in
            if let old = s.entries.removeValue(forKey: key) { s.bytes -= old.body.count + (old.gzipped?.count ?? 0) }
            if s.entries.count >= capacity || s.bytes + body.count > byteCapacity {
                s.entries.removeAll(keepingCapacity: true)
                s.bytes = 0
            }
            s.entries[key] = Entry(marks: marks, body: body)
            s.bytes += body.count
        }
    }

    var figures: (hits: Int, misses: Int, entries: Int, bytes: Int) {
        let (hits, misses) = counts.withLock { ($0.hits, $0.misses) }
        let (entries, bytes) = store.withLock { ($0.entries.count, $0.bytes) }
        return (hits, misses, entries, bytes)
    }
}
