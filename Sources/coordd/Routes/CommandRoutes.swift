import Coordination
import Events
import Foundation

extension App {
    /// (method, path, command, collection for `Location` when it creates, summary). The domain knows commands,
    /// not routes: this table is where the API names them.
    static let commandTable: [(String, String, String, String?, String)] = [
        ("POST", "/v1/warehouses", "warehouse.register", "/v1/warehouses", "Register a warehouse or hub"),
        ("POST", "/v1/warehouses/:code/amend", "warehouse.amend", nil, "Correct a warehouse's details"),
        ("POST", "/v1/items", "item.register", "/v1/items", "Register an item (or a kit of items)"),
        ("POST", "/v1/items/:code/amend", "item.amend", nil, "Correct an item's details"),
        ("PUT", "/v1/warehouses/:code/levels/:item", "levels.set", nil, "Set an item's prepositioning minimum and target at a warehouse"),
        ("POST", "/v1/responses", "response.declare", "/v1/responses", "Declare a response to an emergency"),
        ("POST", "/v1/responses/:id/amend", "response.amend", nil, "Correct a response's name, GLIDE number or country"),
        ("POST", "/v1/responses/:id/severity", "response.severity", nil, "Change a response's severity"),
        ("POST", "/v1/responses/:id/close", "response.close", nil, "Close a response"),
        ("POST", "/v1/responses/:id/areas", "response.areas", nil, "Add affected areas (P-codes) to a response"),
        ("POST", "/v1/responses/:id/phase", "response.phase", nil, "Move a response to another phase"),
        ("POST", "/v1/stock/receipts", "stock.receive", nil, "Receive stock into a warehouse"),
        ("POST", "/v1/stock/dispatches", "stock.dispatch", nil, "Dispatch stock from a warehouse (refused past what is on hand)"),
        ("POST", "/v1/stock/adjustments", "stock.adjust", nil, "Adjust stock for loss, damage, expiry, a find or a count correction"),
        ("POST", "/v1/stock/counts", "stock.count", nil, "Record a physical count; the variance is the movement"),
        ("POST", "/v1/stock/movements/:id/reverse", "stock.movement.reverse", nil, "Reverse a receipt, dispatch, adjustment or count, once"),
        ("POST", "/v1/stock/transfers", "stock.transfer", "/v1/stock/transfers", "Send stock to another warehouse (in transit until received)"),
        ("POST", "/v1/stock/transfers/:id/receive", "stock.transfer.receive", nil, "Receive a transfer, in part or in full; a final receipt records the shortfall as lost in transit"),
        ("POST", "/v1/stock/transfers/:id/cancel", "stock.transfer.cancel", nil, "Cancel a transfer; its goods return to the sender"),
        ("POST", "/v1/people", "person.register", "/v1/people", "Add a person to the surge roster"),
        ("POST", "/v1/people/:id/amend", "person.amend", nil, "Correct a roster member's details"),
        ("POST", "/v1/people/:id/unavailability", "person.unavailability", nil, "Record a period a person cannot deploy"),
        ("POST", "/v1/deployments", "deployment.request", "/v1/deployments", "Request a surge deployment (refused when it overlaps the person's bookings)"),
        ("POST", "/v1/deployments/:id/amend", "deployment.amend", nil, "Correct a deployment's dates, duty station, profile or cluster"),
        ("POST", "/v1/deployments/:id/confirm", "deployment.confirm", nil, "Confirm a requested deployment"),
        ("POST", "/v1/deployments/:id/arrive", "deployment.arrive", nil, "Record a deployee's arrival"),
        ("POST", "/v1/deployments/:id/extend", "deployment.extend", nil, "Extend a deployment's end date"),
        ("POST", "/v1/deployments/:id/complete", "deployment.complete", nil, "Complete a deployment (early completion frees the remaining days)"),
        ("POST", "/v1/deployments/:id/cancel", "deployment.cancel", nil, "Cancel a deployment before arrival, with a reason"),
        ("POST", "/v1/tasks", "task.create", "/v1/tasks", "Create a cluster task"),
        ("POST", "/v1/tasks/:id/amend", "task.amend", nil, "Correct a task's title, description, priority, due date, P-code or lead"),
        ("POST", "/v1/tasks/:id/assign", "task.assign", nil, "Assign a task"),
        ("POST", "/v1/tasks/:id/start", "task.start", nil, "Start a task"),
        ("POST", "/v1/tasks/:id/block", "task.block", nil, "Mark a task blocked, with a reason"),
        ("POST", "/v1/tasks/:id/complete", "task.complete", nil, "Complete a task"),
        ("POST", "/v1/tasks/:id/verify", "task.verify", nil, "Verify a completed task"),
        ("POST", "/v1/tasks/:id/cancel", "task.cancel", nil, "Cancel a task"),
        ("POST", "/v1/tasks/:id/reopen", "task.reopen", nil, "Reopen a completed or cancelled task"),
        ("POST", "/v1/tasks/:id/comments", "task.comment", nil, "Comment on a task"),
    ]

    static let commandRoutes: [Route] = commandTable.map { method, pattern, command, collection, summary in
        Route(method, pattern, role: .operator, summary, kind: .command(command, collection: collection)) { app, ctx in
            try await app.runCommand(command, ctx, collection: collection)
        }
    }

    func runCommand(_ name: String, _ ctx: RequestContext, collection: String?) async throws -> HTTPResponse {
        let request = ctx.request
        var value = JSONValue.object([])
        if !request.body.isEmpty {
            let type = request.header("content-type")?.lowercased() ?? ""
            guard type.hasPrefix("application/json") else {
                throw Problem(status: 415, detail: "send the body as application/json")
            }
            let parsed: JSONValue
            do { parsed = try JSONValue.parse(Data(request.body)) } catch let error as JSONValue.Invalid {
                throw Problem(status: 400, detail: "the body is not valid JSON: \(error.reason)")
            }
            guard parsed.keys != nil else { throw Problem(status: 422, errors: [FieldError("body", "must be a JSON object")]) }
            value = parsed
        }
        // Path parameters join the body; a body field naming one must agree with the path.
        for (key, path) in ctx.params {
            if case .string(let given)? = value[key], given != path {
                throw Problem(status: 422, errors: [FieldError(key, "differs from the path")])
            }
            value = value.setting(key, .string(path))
        }
        var context = CommandContext(actor: ctx.principal?.subject ?? "anonymous", correlationID: ctx.requestID, source: "api")
        context.idempotencyKey = request.header("idempotency-key")
        context.scope = ctx.principal?.scope ?? .unscoped
        if let ifMatch = request.header("if-match") { context.expectedVersion = try Self.strongVersion(ifMatch) }
        let result = try await service.execute(name: name, value: value, context)
        var headers: [(String, String)] = [("ETag", "\"\(result.version)\"")]
        if result.created, let collection { headers.append(("Location", "\(collection)/\(result.id)")) }
        // A person's answer shows what the caller may see of them (it may not be what they sent).
        let body = result.kind == "person" && ctx.principal?.personalData != true ? PersonalData.redact(personState: result.body) : result.body
        return .json(result.created ? 201 : 200, body, headers: headers)
    }

    /// The version an `If-Match` names. It is compared strongly (RFC 9110 §13.1.1): a weak tag (`W/"8"`) never
    /// matches, so a write under it is refused as stale, never applied.
    static func strongVersion(_ header: String) throws -> Int64 {
        let tags = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard tags.count == 1, let tag = tags.first else {
            throw Problem(status: 400, detail: "If-Match must name one version ETag such as \"3\"")
        }
        if tag.hasPrefix("W/") { throw Problem(status: 412, type: "stale", detail: "If-Match is compared strongly: a weak ETag never matches") }
        guard tag.count >= 3, tag.first == "\"", tag.last == "\"", let version = Int64(tag.dropFirst().dropLast()), version >= 0,
              ListSpec.isDecimalText(String(tag.dropFirst().dropLast())) else {
            throw Problem(status: 400, detail: "If-Match must be a version ETag such as \"3\"")
        }
        return version
    }
}
