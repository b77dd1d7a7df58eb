import Foundation

/// Seals short secrets (webhook signing secrets) with a key kept outside the database, so that a dump of the
/// database alone does not reveal them. Encrypt-then-MAC from HMAC-SHA256 alone: the keystream is HMAC(Ke, nonce ||
/// counter) (HMAC as a PRF in counter mode), the tag HMAC(Km, "v1" || nonce || ciphertext); Ke and Km are derived from
/// the key with distinct labels. A random 16-byte nonce per seal. Opening checks the tag in constant time first.
public struct SecretBox: Sendable {
    private let encryptionKey: [UInt8]
    private let macKey: [UInt8]

    /// `key`: at least 32 bytes (a key file's bytes; trailing newlines are not part of it).
    public init(key: [UInt8]) throws {
        guard key.count >= 32 else { throw SecretBoxError.keyTooShort }
        encryptionKey = HMAC.sha256(key: key, message: Array("coord secret box: encryption".utf8))
        macKey = HMAC.sha256(key: key, message: Array("coord secret box: authentication".utf8))
    }

    /// Reads the key from `path`: 32 or more bytes, or 64+ hex digits, or base64 of 32+ bytes (surrounding white
    /// space ignored).
    public init(keyFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw SecretBoxError.unreadable(path) }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.count >= 64, text.count % 2 == 0, let bytes = Hex.bytes(Array(text.utf8)) {
            try self.init(key: bytes)
        } else if let decoded = Data(base64Encoded: text), decoded.count >= 32 {
            try self.init(key: [UInt8](decoded))
        } else {
            var bytes = [UInt8](data)
            while bytes.last == 10 || bytes.last == 13 { bytes.removeLast() }
            try self.init(key: bytes)
        }
    }

    /// Writes a new random key (base64 of 32 bytes) to `path`, readable by its owner only. Fails if the file exists.
    public static func createKeyFile(_ path: String) throws {
        var rng = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let text = Data(key).base64EncodedString() + "\n"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw SecretBoxError.unreadable(path)
        }
    }

    public func seal(_ plaintext: [UInt8]) -> String {
        var rng = SystemRandomNumberGenerator()
        let nonce = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let ciphertext = xor(plaintext, nonce: nonce)
        let tag = HMAC.sha256(key: macKey, message: Array("v1".utf8) + nonce + ciphertext)
        return "v1:" + Data(nonce + ciphertext + tag).base64EncodedString()
    }

    public func open(_ sealed: String) throws -> [UInt8] {
        guard sealed.hasPrefix("v1:"), let data = Data(base64Encoded: String(sealed.dropFirst(3))), data.count >= 48 else {
            throw SecretBoxError.malformed
        }
        let bytes = [UInt8](data)
        let nonce = Array(bytes[0..<16]), ciphertext = Array(bytes[16..<(bytes.count - 32)]), tag = Array(bytes[(bytes.count - 32)...])
        guard HMAC.equal(tag, HMAC.sha256(key: macKey, message: Array("v1".utf8) + nonce + ciphertext)) else { throw SecretBoxError.wrongKey }
        return xor(ciphertext, nonce: nonce)
    }

    private func xor(_ input: [UInt8], nonce: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(input.count)
        var counter: UInt32 = 0
        while out.count < input.count {
            let block = HMAC.sha256(key: encryptionKey, message: nonce + withUnsafeBytes(of: counter.bigEndian, Array.init))
            for b in block where out.count < input.count { out.append(input[out.count] ^ b) }
            counter += 1
        }
        return out
    }
}

public enum SecretBoxError: Error, CustomStringConvertible, Equatable {
    case keyTooShort, unreadable(String), malformed, wrongKey
    public var description: String {
        switch self {
        case .keyTooShort: return "the secret key must be at least 32 bytes"
        case .unreadable(let path): return "the secret key file \(path) cannot be read or written"
        case .malformed: return "a sealed secret is malformed"
        case .wrongKey: return "a sealed secret does not open with this key (another key sealed it, or it was altered)"
        }
    }
}
