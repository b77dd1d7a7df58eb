import Coordination
import Events
import Foundation

enum WebhookCommands {
    static let keyHelp = """
        The signing secret is sealed with the key of COORD_SECRET_KEY_FILE (the embedded cluster's: COORD_DATA_DIR/secret.key);
        coordd must have the same key to sign deliveries. docs/ALERTS.md tells how a receiver verifies them.

        """ + databaseHelp

    static func opened<T>(_ body: (PostgresPool) async throws -> T) async throws -> T {
        let session = try Session.open()
        defer { session.close() }
        try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
        return try await body(session.pool)
    }

    /// A command on one subscription by id: `action` false means there is none.
    static func byID(_ name: String, _ summary: String, _ action: @escaping @Sendable (WebhookStore, String) async throws -> Bool,
                     done: @escaping @Sendable (String) -> String) -> Command {
        Command(spec: CommandSpec(path: "coordctl webhooks \(name)", summary: summary, arguments: "ID")) { args in
            try args.requirePositionals(1...1)
            let id = args.positionals[0]
            guard try await opened({ try await action(WebhookStore(pool: $0), id) }) else {
                printError("Error: no webhook \(id)")
                return 1
            }
            print(done(id))
            return 0
        }
    }

    static let group = Group(name: "webhooks", summary: "Webhook subscriptions to alerts, signed as Standard Webhooks.", commands: [
        "add": Command(spec: CommandSpec(
            path: "coordctl webhooks add", summary: "Subscribe an endpoint to alerts and print its signing secret once.", arguments: "URL",
            options: [.init("kinds", value: "KIND,...", help: "Only these alert kinds (default: all): " + AlertKinds.all.joined(separator: ", ") + "."),
                      .init("description", value: "TEXT", help: "What the endpoint is (shown in lists)."),
                      .init("allow-private", help: "Allow a loopback, link-local or private address (as COORD_WEBHOOK_ALLOW_PRIVATE=1)."),
                      .json],
            details: keyHelp)) { args in
            try args.requirePositionals(1...1)
            let session = try Session.open()
            defer { session.close() }
            try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
            guard let box = try WebhookSecrets.box(target: session.target) else { printError("Error: \(WebhookSecrets.missing)"); return 1 }
            let kinds = args.value("kinds").map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            let allow = args.flag("allow-private") || ProcessInfo.processInfo.environment["COORD_WEBHOOK_ALLOW_PRIVATE"] == "1"
            do {
                let (webhook, secret) = try await WebhookStore(pool: session.pool).create(
                    url: args.positionals[0], kinds: kinds, description: args.value("description"), createdBy: "coordctl", box: box, allowPrivate: allow)
                if args.flag("json") {
                    print(Output.json(["id": webhook.id, "url": webhook.url, "secret": secret, "kinds": webhook.kinds as Any? ?? NSNull()]))
                } else {
                    print(secret)
                    FileHandle.standardError.write(Data("Subscribed \(webhook.id) to \(webhook.kinds?.joined(separator: ", ") ?? "every alert kind"). Store the secret now: it is not shown again.\n".utf8))
                }
                return 0
            } catch let error as DomainError {
                printError("Error: \(error)")
                return 1
            }
        },
        "list": Command(spec: CommandSpec(path: "coordctl webhooks list", summary: "List subscriptions with their delivery counts (never secrets).",
                                          options: [.json])) { args in
            try args.requirePositionals(0...0)
            let all = try await opened { try await WebhookStore(pool: $0).list() }
            if args.flag("json") {
                print("[" + all.map(\.json).joined(separator: ",") + "]")
            } else {
                print(Output.table(["id", "url", "kinds", "enabled", "pending", "delivered", "failed", "created"], all.map {
                    [$0.id, $0.url, $0.kinds?.joined(separator: ",") ?? "all", $0.enabled ? "yes" : "no (\($0.disabledReason ?? "disabled"))",
                     String($0.pending), String($0.delivered), String($0.failed), Timestamp.format($0.createdAt)]
                }))
            }
            return 0
        },
        "remove": byID("remove", "Delete a subscription and its deliveries.", { try await $0.remove($1) }) { "Removed \($0)." },
        "enable": byID("enable", "Enable a subscription again (a 410 answer disables it).", { try await $0.enable($1) }) {
            "Enabled \($0); its pending deliveries go out again."
        },
        "test": Command(spec: CommandSpec(path: "coordctl webhooks test", summary: "Queue a signed ping delivery (coordd sends it within a second).",
                                          arguments: "ID")) { args in
            try args.requirePositionals(1...1)
            do {
                let id = try await opened { try await WebhookStore(pool: $0).ping(args.positionals[0]) }
                print(id)
                return 0
            } catch let error as DomainError {
                printError("Error: \(error)")
                return 1
            }
        },
        "deliveries": Command(spec: CommandSpec(
            path: "coordctl webhooks deliveries", summary: "A subscription's deliveries: status, attempts, last answer, next retry.", arguments: "ID",
            options: [.init("status", value: "STATUS", help: "pending, delivered or failed."), .init("limit", value: "N", help: "How many (default 50)."),
                      .json])) { args in
            try args.requirePositionals(1...1)
            let status = args.value("status")
            if let status, !["pending", "delivered", "failed"].contains(status) {
                throw UsageError("--status must be pending, delivered or failed", usage: "Usage: coordctl webhooks deliveries ID [--status S]")
            }
            let limit = try args.int("limit", default: 50, range: 1...1000)
            do {
                let all = try await opened { try await WebhookStore(pool: $0).deliveries(webhook: args.positionals[0], status: status, limit: limit) }
                if args.flag("json") {
                    print("[" + all.map(\.json).joined(separator: ",") + "]")
                } else {
                    print(Output.table(["id", "type", "status", "attempts", "last status", "last error", "next attempt", "created"], all.map {
                        [$0.id, $0.type, $0.status, String($0.attempts), $0.lastStatus.map(String.init) ?? "-", $0.lastError ?? "-",
                         $0.nextAttemptAt.map(Timestamp.format) ?? "-", Timestamp.format($0.createdAt)]
                    }))
                }
                return 0
            } catch let error as DomainError {
                printError("Error: \(error)")
                return 1
            }
        },
    ])
}
