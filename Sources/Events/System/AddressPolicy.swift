import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which network addresses an outgoing request (a webhook delivery) may reach: by default only public ones, so that
/// a subscription cannot be used to probe the network coordd runs in (loopback, RFC 1918 private ranges, CGNAT,
/// link-local and cloud metadata at 169.254.169.254, unique-local IPv6, multicast, unspecified).
public enum AddressPolicy {
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case notResolved(String)
        case privateAddress(String)
        public var description: String {
            switch self {
            case .notResolved(let host): return "the host \(host) does not resolve"
            case .privateAddress(let address): return "it resolves to \(address), a loopback, link-local or private address"
            }
        }
    }

    /// Resolves `host` and refuses it if any of its addresses is not public (unless `allowPrivate`). Returns the addresses.
    @discardableResult
    public static func check(host: String, allowPrivate: Bool) throws -> [String] {
        let addresses = resolve(host)
        guard !addresses.isEmpty else { throw Refusal.notResolved(host) }
        if !allowPrivate, let bad = addresses.first(where: { !isPublic($0) }) { throw Refusal.privateAddress(bad) }
        return addresses
    }

    /// The numeric addresses `host` resolves to (an IP literal resolves to itself).
    public static func resolve(_ host: String) -> [String] {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(bare, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !out.contains(text) { out.append(text) }
            }
            p = ai.pointee.ai_next
        }
        return out
    }

    /// Whether a numeric IPv4 or IPv6 address is a public unicast one.
    public static func isPublic(_ address: String) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return isPublicV4(withUnsafeBytes(of: v4.s_addr) { Array($0) })
        }
        var v6 = in6_addr()
        let zoneless = address.split(separator: "%").first.map(String.init) ?? address
        guard inet_pton(AF_INET6, zoneless, &v6) == 1 else { return false }
        let b = withUnsafeBytes(of: v6) { Array($0) }
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return isPublicV4(Array(b[12..<16])) } // ::ffff:a.b.c.d
        if b[0..<12].allSatisfy({ $0 == 0 }) { return false }                          // ::, ::1, IPv4-compatible
        if b[0] == 0xff { return false }                                                // multicast
        if b[0] & 0xfe == 0xfc { return false }                                         // fc00::/7 unique local
        if b[0] == 0xfe && b[1] & 0xc0 == 0x80 { return false }                         // fe80::/10 link-local
        if b[0] == 0xfe && b[1] & 0xc0 == 0xc0 { return false }                         // fec0::/10 site-local (deprecated)
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8 { return false } // 2001:db8::/32 documentation
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b { return isPublicV4(Array(b[12..<16])) } // NAT64
        return true
    }

    static func isPublicV4(_ a: [UInt8]) -> Bool {
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _): return false                   // this network, private, loopback
        case (100, 64...127): return false                             // CGNAT
        case (169, 254): return false                                  // link-local (cloud metadata)
        case (172, 16...31), (192, 168): return false                  // private
        case (192, 0) where a[2] == 0 || a[2] == 2: return false       // IETF protocol assignments, TEST-NET-1
        case (198, 18...19): return false                              // benchmarking
        case (198, 51) where a[2] == 100, (203, 0) where a[2] == 113: return false // TEST-NET-2, -3
        case (224...255, _): return false                              // multicast, reserved, broadcast
        default: return true
        }
    }
}
