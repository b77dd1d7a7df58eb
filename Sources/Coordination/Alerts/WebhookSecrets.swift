import Events
import Foundation

/// Where the key that seals webhook secrets comes from (docs/ALERTS.md): `COORD_SECRET_KEY_FILE`; else, for the
/// embedded cluster, `<COORD_DATA_DIR>/secret.key`, created on first use; else none (webhooks cannot be created).
/// The key lives outside the database, so a dump of the database alone does not open the secrets.
public enum WebhookSecrets {
    public static func box(environment env: [String: String] = ProcessInfo.processInfo.environment,
                           target: DatabaseLocator.Target = DatabaseLocator.resolve()) throws -> SecretBox? {
        if let path = env["COORD_SECRET_KEY_FILE"], !path.isEmpty { return try SecretBox(keyFile: path) }
        guard case .embedded(let embedded) = target else { return nil }
        let path = embedded.dataDirectory + "/secret.key"
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(atPath: embedded.dataDirectory, withIntermediateDirectories: true)
            try SecretBox.createKeyFile(path)
        }
        return try SecretBox(keyFile: path)
    }

    public static let missing = "webhooks need a key to seal their secrets: set COORD_SECRET_KEY_FILE to a file of 32 random bytes "
        + "(for example `head -c 32 /dev/urandom | base64 > /etc/coord/secret.key`) for coordd and coordctl"
}
