import Foundation

/// Finding a byte sequence in a buffer: HTTP heads and chunk lines (coordd's decoder, the tests' and the
/// benchmark's clients), keys in stored metadata.
public enum ByteSearch {
    public static let crlf: [UInt8] = [13, 10]
    /// The blank line that ends an HTTP head.
    public static let crlfcrlf: [UInt8] = [13, 10, 13, 10]

    /// First index of `needle` in `haystack` at or after `start`; memchr finds each candidate first byte.
    public static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int = 0) -> Int? {
        haystack.withUnsafeBufferPointer { find(needle, in: $0, from: start) }
    }

    public static func find(_ needle: [UInt8], in h: UnsafeBufferPointer<UInt8>, from start: Int = 0) -> Int? {
        guard !needle.isEmpty, start >= 0, h.count >= needle.count + start, let base = h.baseAddress else { return nil }
        let last = h.count - needle.count
        var i = start
        while i <= last {
            guard let p = memchr(base + i, Int32(needle[0]), last - i + 1) else { return nil }
            i = base.distance(to: p.assumingMemoryBound(to: UInt8.self))
            var match = true
            for j in 1..<needle.count where h[i + j] != needle[j] { match = false; break }
            if match { return i }
            i += 1
        }
        return nil
    }
}
