import Coordination
import Events
import Foundation

/// Webhook subscriptions (admin): docs/ALERTS.md. The secret is in the creation's answer only.
extension App {
    static let webhookRoutes: [Route] = [
        Route("POST", "/v1/webhooks", role: .admin, "Subscribe an endpoint to alerts: answers its signing secret, once") { app, ctx in
            let body = try jsonObject(ctx.request, allowed: ["url", "kinds", "description"])
            var errors: [FieldError] = []
            var url = "", kinds: [String]?, description: String?
            switch body["url"] {
            case .string(let s)?: url = s
            case nil: errors.append(FieldError("url", "is required"))
            default: errors.append(FieldError("url", "must be a string"))
            }
            switch body["kinds"] {
            case nil, .null?: break
            case .array(let items)?:
                kinds = []
                for item in items {
                    if case .string(let k) = item { kinds!.append(k) } else { errors.append(FieldError("kinds", "must be an array of alert kinds")) }
                }
            default: errors.append(FieldError("kinds", "must be an array of alert kinds"))
            }
            switch body["description"] {
            case nil, .null?: break
            case .string(let s)?: description = s
            default: errors.append(FieldError("description", "must be a string"))
            }
            if !errors.isEmpty { throw DomainError.validation(errors) }
            guard let box = app.webhookSettings.box else { throw Problem(status: 503, detail: WebhookSecrets.missing) }
            let (webhook, secret) = try await app.webhooks.create(url: url, kinds: kinds, description: description,
                                                                  createdBy: ctx.principal!.subject, box: box,
                                                                  allowPrivate: app.webhookSettings.allowPrivate)
            var text = webhook.json
            text.removeLast()
            text += ",\"secret\":\(JSONWriter.quote(secret))}"
            return .json(201, text, headers: [("Location", "/v1/webhooks/\(webhook.id)"), ("Cache-Control", "no-store")])
        },
        Route("GET", "/v1/webhooks", role: .admin, "Subscriptions, with their delivery counts (never their secrets)") { app, _ in
            let all = try await app.webhooks.list()
            return .json(200, "{\"items\":[" + all.map(\.json).joined(separator: ",") + "],\"next\":null}")
        },
        Route("GET", "/v1/webhooks/:id", role: .admin, "One subscription") { app, ctx in
            guard let webhook = try await app.webhooks.get(ctx.params["id"]!) else { throw DomainError.notFound(kind: "webhook", id: ctx.params["id"]!) }
            return .json(200, webhook.json)
        },
        Route("DELETE", "/v1/webhooks/:id", role: .admin, "Unsubscribe: the subscription and its deliveries are deleted") { app, ctx in
            guard try await app.webhooks.remove(ctx.params["id"]!) else { throw DomainError.notFound(kind: "webhook", id: ctx.params["id"]!) }
            return HTTPResponse(status: 204)
        },
        Route("GET", "/v1/webhooks/:id/deliveries", role: .admin, "Deliveries, newest first, with every attempt, status code and next retry",
              query: [ListFilter("status", .oneOf(["pending", "delivered", "failed"]), "Only deliveries in this state"),
                      ListFilter("limit", .integer(1...1000), "How many (default 100)")]) { app, ctx in
            let deliveries = try await app.webhooks.deliveries(webhook: ctx.params["id"]!, status: ctx.query["status"],
                                                               limit: ctx.query["limit"].flatMap { Int($0) } ?? 100)
            return .json(200, "{\"items\":[" + deliveries.map(\.json).joined(separator: ",") + "],\"next\":null}")
        },
        Route("POST", "/v1/webhooks/:id/test", role: .admin, "Send a ping delivery now (signed like every delivery)") { app, ctx in
            let id = try await app.webhooks.ping(ctx.params["id"]!)
            return .json(202, "{\"delivery\":\(JSONWriter.quote(id)),\"type\":\"ping\",\"status\":\"pending\"}")
        },
    ]

    /// A JSON object body with only `allowed` fields (415 / 400 / 422 otherwise), as commands are checked.
    static func jsonObject(_ request: HTTPRequest, allowed: Set<String>) throws -> JSONValue {
        guard request.header("content-type")?.lowercased().hasPrefix("application/json") == true else {
            throw Problem(status: 415, detail: "the body must be application/json")
        }
        guard let value = try? JSONValue.parse(Data(request.body)), let keys = value.keys else {
            throw Problem(status: 400, detail: "the body is not a JSON object")
        }
        let unknown = keys.filter { !allowed.contains($0) }.sorted()
        if !unknown.isEmpty { throw DomainError.validation(unknown.map { FieldError($0, "unknown field") }) }
        return value
    }
}
