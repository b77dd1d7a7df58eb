import Coordination
import Events
import Foundation

enum TokenCommands {
    static let group = Group(name: "tokens", summary: "API bearer tokens (stored only as SHA-256 digests).", commands: [
        "create": Command(spec: CommandSpec(
            path: "coordctl tokens create", summary: "Create a token and print it once.",
            options: [.init("role", value: "ROLE", help: "viewer, operator or admin (required)."),
                      .init("subject", value: "NAME", help: "Who uses it; recorded as the actor of the events it writes (required)."),
                      .init("personal-data", help: "It may see people's names, emails and unavailability reasons (operators and admins only)."),
                      .init("expires", value: "DURATION", help: "It stops working after 90s, 10m, 12h, 30d... (default: when revoked)."),
                      .init("country", value: "ISO3", help: "Limit it to a country's warehouses and responses (repeatable)."),
                      .init("response", value: "ID", help: "Limit it to a response, its deployments and tasks (repeatable)."),
                      .init("warehouse", value: "CODE", help: "Limit it to a warehouse and its stock (repeatable)."),
                      .json],
            details: "The token is printed once and cannot be shown again; only its digest is stored. Without --personal-data it sees\n"
                + "person ids where names, emails and reasons would be (docs/PRIVACY.md).\n\n"
                + "With --country, --response or --warehouse it is scoped: writes outside the scope are refused (403 out-of-scope),\n"
                + "reads outside it are filtered out, and the region's reference data (items, the roster) is read-only to it. A\n"
                + "transfer needs both warehouses in scope. Admin tokens are unscoped.\n\n" + databaseHelp)) { args in
            try args.requirePositionals(0...0)
            let usage = "Usage: coordctl tokens create --role ROLE --subject NAME"
            guard let roleName = args.value("role") else { throw UsageError("--role is required", usage: usage) }
            guard let role = Role(rawValue: roleName) else { throw UsageError("--role must be viewer, operator or admin", usage: usage) }
            guard let subject = args.value("subject"), !subject.isEmpty else { throw UsageError("--subject is required", usage: usage) }
            let personalData = args.flag("personal-data")
            if personalData && role == .viewer { throw UsageError("--personal-data is for operator and admin tokens: a viewer never has it", usage: usage) }
            var expiresIn: Double?
            if let text = args.value("expires") {
                guard let seconds = TokenStore.duration(text) else { throw UsageError("--expires must be a duration such as 90s, 10m, 12h or 30d", usage: usage) }
                expiresIn = seconds
            }
            let scope = Scope(countries: args.values("country"), responses: args.values("response"), warehouses: args.values("warehouse"))
            if role == .admin && !scope.isUnscoped { throw UsageError("admin tokens are unscoped: --country, --response and --warehouse are for viewers and operators", usage: usage) }
            do { try scope.validate() } catch let error as DomainError { throw UsageError(error.description, usage: usage) }
            let session = try Session.open()
            defer { session.close() }
            try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
            let (id, token) = try await TokenStore(pool: session.pool).create(subject: subject, role: role, personalData: personalData, expiresIn: expiresIn,
                                                                              scope: scope)
            if args.flag("json") {
                print(Output.json(["id": id, "token": token, "role": role.rawValue, "subject": subject, "personal_data": personalData,
                                   "scope": ["countries": scope.countries, "responses": scope.responses, "warehouses": scope.warehouses]]))
            } else {
                print(token)
                FileHandle.standardError.write(Data("Created \(role.rawValue) token \(id) for \(subject). Store it now: it is not shown again.\n".utf8))
            }
            return 0
        },
        "list": Command(spec: CommandSpec(path: "coordctl tokens list", summary: "List tokens (ids, subjects, roles; never the tokens).",
                                          options: [.json])) { args in
            try args.requirePositionals(0...0)
            let session = try Session.open()
            defer { session.close() }
            try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
            let tokens = try await TokenStore(pool: session.pool).list()
            if args.flag("json") {
                print(Output.json(tokens.map { ["id": $0.id, "subject": $0.subject, "role": $0.role, "created_at": Timestamp.format($0.createdAt),
                                                "revoked_at": $0.revokedAt.map(Timestamp.format) as Any? ?? NSNull(), "personal_data": $0.personalData,
                                                "expires_at": $0.expiresAt.map(Timestamp.format) as Any? ?? NSNull(),
                                                "scope": ["countries": $0.scope.countries, "responses": $0.scope.responses, "warehouses": $0.scope.warehouses]] }))
            } else {
                print(Output.table(["id", "subject", "role", "personal data", "scope", "created", "expires", "revoked"], tokens.map {
                    [$0.id, $0.subject, $0.role, $0.personalData ? "yes" : "no", $0.scope.summary, Timestamp.format($0.createdAt),
                     $0.expiresAt.map(Timestamp.format) ?? "", $0.revokedAt.map(Timestamp.format) ?? ""]
                }))
            }
            return 0
        },
        "revoke": Command(spec: CommandSpec(path: "coordctl tokens revoke", summary: "Revoke a token by id (effective within seconds).",
                                            arguments: "ID", options: [.json])) { args in
            try args.requirePositionals(1...1)
            let session = try Session.open()
            defer { session.close() }
            try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
            guard try await TokenStore(pool: session.pool).revoke(id: args.positionals[0]) else {
                printError("Error: no active token with id \(args.positionals[0])")
                return 1
            }
            if args.flag("json") {
                print(Output.json(["id": args.positionals[0], "revoked": true]))
            } else {
                print("Revoked \(args.positionals[0]).")
            }
            return 0
        },
    ])
}
