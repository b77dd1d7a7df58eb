import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd

/// The console in a real browser (headless chromium driven over WebDriver), against a coordd holding the demo
/// scenario. Each test uses the hooks of CONSOLE.md, as a user's eyes and hands would: what it reads on the page is
/// compared with what the API answers. `COORD_SCREENSHOTS=DIR` also saves screenshots there (docs/screenshots).
@Suite("The console in a browser", .serialized)
struct BrowserTests {
    static let response = "PHL-2026-TC-01"

    /// A coordd with the demo, a browser, signed in with `role`'s token; nil (after recording why) without chromium.
    static func start(_ role: Role = .operator, width: Int = 1280, height: Int = 900) async throws -> (TestDaemon, Browser)? {
        guard Browser.tools != nil else { OutsideTools.missing("chromium and chromium-driver (Debian)"); return nil }
        let d = try await TestDaemon()
        _ = try await DemoScenario.load(into: d.service)
        try await d.settle()
        let b = try await Browser(width: width, height: height)
        let token = role == .viewer ? d.viewer : role == .admin ? d.admin : d.operatorToken
        try await b.open("http://127.0.0.1:\(d.port)/")
        try await b.type(try await b.find("[data-testid=signin-token]"), token)
        try await b.click(try await b.find("[data-testid=signin-submit]"))
        try await b.find("[data-testid=kpi-deployed]")
        try await b.wait("the figures load") { try await b.text("[data-testid=kpi-deployed]") != "…" }
        return (d, b)
    }

    static func count(_ d: TestDaemon, _ path: String) async throws -> Int {
        var total = 0
        var next: String? = nil
        repeat {
            let sep = path.contains("?") ? "&" : "?"
            let r = try await d.call("GET", path + sep + "limit=1000" + (next.map { "&next=" + $0 } ?? ""), token: d.viewer)
            #expect(r.status == 200, "\(path): \(r.body)")
            total += (r.json["items"] as? [Any])?.count ?? 0
            next = r.json["next"] as? String
        } while next != nil
        return total
    }

    static func shoot(_ b: Browser, _ name: String) async throws {
        guard let dir = ProcessInfo.processInfo.environment["COORD_SCREENSHOTS"], !dir.isEmpty else { return }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try await b.screenshot(to: dir + "/" + name + ".png")
    }

    /// Opens a console page by its address, waiting for `ready` to appear.
    static func page(_ b: Browser, _ d: TestDaemon, _ path: String, ready: String) async throws {
        try await b.open("http://127.0.0.1:\(d.port)\(path)")
        try await b.find(ready, timeout: 15)
    }

    @Test("sign in with a token: the overview's five figures are the API's counts for the response, alerts listed, the feed live; no token kept in the browser; sign-out ends the session")
    func overview() async throws {
        guard let (d, b) = try await Self.start() else { return }
        defer { Task { await b.quit(); await d.stop() } }
        let r = Self.response
        let expected: [(String, String)] = [
            ("kpi-deployed", "/v1/deployments?response=\(r)&status=deployed"),
            ("kpi-arriving", "/v1/deployments?response=\(r)&arriving_within_days=14"),
            ("kpi-unfilled", "/v1/deployments?response=\(r)&status=requested"),
            ("kpi-below-minimum", "/v1/stock?status=below_minimum&country=PHL"),
            ("kpi-overdue-tasks", "/v1/tasks?response=\(r)&overdue=true"),
        ]
        for (hook, path) in expected {
            let shown = try await b.text("[data-testid=\(hook)]")
            let counted = try await Self.count(d, path)
            #expect(shown == String(counted), "\(hook): the page says \(shown), the API counts \(counted)")
        }
        #expect(try await b.property(try await b.find("[data-testid=response-select]"), "value") as? String == r)
        try await b.wait("the live feed connects") { try await b.text("[data-testid=live-status]") == "live" }
        let alerts = try await b.all("[data-testid=alert-row]")
        #expect(!alerts.isEmpty)
        let kinds = Set(try await d.call("GET", "/v1/alerts?limit=1000", token: d.viewer).json["items"].map { ($0 as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String } } ?? [])
        for row in alerts { #expect(kinds.contains(try await b.attribute(row, "data-kind") ?? "")) }
        #expect(try await b.all("svg.chart").count == 2, "people deployed and dispatches per day, drawn as SVG")
        try await Self.shoot(b, "overview-desktop")

        // Nothing that grants access is readable by scripts or kept in storage.
        let kept = try await b.script("return [document.cookie, localStorage.length, sessionStorage.length]") as? [Any]
        #expect((kept?[0] as? String)?.contains("coord_session") == false, "the session cookie is HttpOnly")
        #expect(kept?[1] as? Int == 0 && kept?[2] as? Int == 0)

        try await b.click(try await b.find("[data-testid=signout]"))
        try await b.find("[data-testid=signin-token]")
        let after = try await b.script("return fetch('/v1/stock', {credentials: 'same-origin'}).then(r => r.status)") as? Int
        #expect(after == 401, "signed out: the browser's cookie no longer reads")
    }

    @Test("stock: a dispatch in the form lowers the line's on-hand by its quantity; one past what is on hand is refused and says what is available")
    func dispatchForm() async throws {
        guard let (d, b) = try await Self.start() else { return }
        defer { Task { await b.quit(); await d.stop() } }
        try await Self.page(b, d, "/console/stock", ready: "[data-testid=stock-row][data-warehouse=TAC][data-item=KRELSHEK02]")
        let row = "[data-testid=stock-row][data-warehouse=TAC][data-item=KRELSHEK02] [data-testid=on-hand]"
        let before = Int(try await b.text(row)) ?? -1
        let api = try await d.call("GET", "/v1/stock?warehouse=TAC&item=KRELSHEK02", token: d.viewer).json["items"] as? [[String: Any]]
        #expect(api?.first?["on_hand"] as? Int == before, "the row shows what the API holds")

        let form = try await b.find("[data-testid=dispatch-form]")
        try await b.fill(form, "warehouse", "TAC")
        try await b.fill(form, "item", "KRELSHEK02")
        try await b.fill(form, "quantity", "7")
        try await b.fill(form, "destination", "Palo evacuation centre")
        try await b.click(try await b.find("[data-testid=dispatch-submit]", in: form))
        let result = try await b.find("[data-testid=form-result]", in: form)
        try await b.wait("the dispatch is recorded") { try await b.text(result).hasPrefix("Dispatched") }
        try await b.wait("the row shows the new on-hand") { Int(try await b.text(row)) == before - 7 }
        let ledger = try await d.call("GET", "/v1/stock/ledger?warehouse=TAC&item=KRELSHEK02&movement=dispatch&limit=1000", token: d.viewer).json["items"] as? [[String: Any]]
        let last = ledger?.last
        #expect(last?["quantity"] as? Int == -7 && last?["counterpart"] as? String == "Palo evacuation centre" && last?["response"] as? String == Self.response,
                "the form's response (the one shown) reached the ledger")

        try await b.fill(form, "quantity", "999999")
        try await b.click(try await b.find("[data-testid=dispatch-submit]", in: form))
        try await b.wait("the refusal is shown") { try await b.text(result).hasPrefix("Refused") }
        let said = try await b.text(result)
        #expect(said.contains("insufficient stock") && said.contains("\(before - 7) available"), "\(said)")
        #expect(Int(try await b.text(row)) == before - 7, "a refusal changes nothing")
        try await Self.shoot(b, "stock-desktop")
    }

    @Test("a receipt recorded by another client appears on the open stock page, and the overview's figures follow the feed, without a reload")
    func liveUpdates() async throws {
        guard let (d, b) = try await Self.start() else { return }
        defer { Task { await b.quit(); await d.stop() } }
        try await Self.page(b, d, "/console/stock", ready: "[data-testid=stock-row][data-warehouse=GUI][data-item=KRELSHEK02]")
        try await b.wait("the live feed connects") { try await b.text("[data-testid=live-status]") == "live" }
        try await b.script("window.__notReloaded = true")
        let row = "[data-testid=stock-row][data-warehouse=GUI][data-item=KRELSHEK02] [data-testid=on-hand]"
        let before = Int(try await b.text(row)) ?? -1
        let receipt = try await d.call("POST", "/v1/stock/receipts", token: d.operatorToken,
                                       body: #"{"warehouse":"GUI","item":"KRELSHEK02","quantity":250,"source":"procurement"}"#)
        #expect(receipt.status == 200, "\(receipt.body)")
        try await b.wait("the receipt appears") { Int(try await b.text(row)) == before + 250 }
        #expect(try await b.script("return window.__notReloaded === true") as? Bool == true, "no reload")

        // The overview: a new request raises "requested, unfilled" by one while the page stays open.
        try await b.click(try await b.find("#nav a[data-page=overview]"))
        let unfilled = "[data-testid=kpi-unfilled]"
        try await b.wait("the overview loads") { Int(try await b.text(unfilled)) != nil }
        let shown = Int(try await b.text(unfilled)) ?? -1
        let free = try await d.call("GET", "/v1/people?profile=WASH&available_from=2027-03-01&available_to=2027-03-20&available=true&limit=1", token: d.viewer)
        let person = try #require((free.json["items"] as? [[String: Any]])?.first?["id"] as? String)
        let request = try await d.call("POST", "/v1/deployments", token: d.operatorToken,
                                       body: "{\"person\":\"\(person)\",\"response\":\"\(Self.response)\",\"profile\":\"WASH\",\"start\":\"2027-03-01\",\"end\":\"2027-03-20\"}")
        #expect(request.status == 201, "\(request.body)")
        try await b.wait("the figure follows") { Int(try await b.text(unfilled)) == shown + 1 }
        #expect(try await b.script("return window.__notReloaded === true") as? Bool == true, "no reload")
    }

    @Test("surge: a request for a booked person is refused and names the deployment in the way; confirming a request moves its row")
    func surge() async throws {
        guard let (d, b) = try await Self.start() else { return }
        defer { Task { await b.quit(); await d.stop() } }
        let deployed = try #require((try await d.call("GET", "/v1/deployments?response=\(Self.response)&status=deployed&limit=1", token: d.viewer).json["items"] as? [[String: Any]])?.first)
        let (busy, dep, profile) = (deployed["person"] as! String, deployed["id"] as! String, deployed["profile"] as! String)
        try await Self.page(b, d, "/console/surge?response=\(Self.response)", ready: "[data-testid=deployment-form] select[name=profile] option[value=\(profile)]")
        let form = try await b.find("[data-testid=deployment-form]")
        try await b.script("""
            const f = arguments[0]; f.elements.profile.value = arguments[1];
            f.elements.start.value = arguments[2]; f.elements.end.value = arguments[3];
            """, [form, profile, deployed["start"] as! String, deployed["end"] as! String])
        try await b.click(try await b.find("button", in: form))
        try await b.find("select[name=person] option[value=\"\(busy)\"]", in: form)
        let option = try await b.text(try await b.find("select[name=person] option[value=\"\(busy)\"]", in: form))
        #expect(option.contains(dep), "the booked person is marked with what is in the way: \(option)")
        try await b.script("arguments[0].elements.person.value = arguments[1]", [form, busy])
        try await b.click(try await b.find("[data-testid=deployment-submit]", in: form))
        let result = try await b.find("[data-testid=form-result]", in: form)
        try await b.wait("the refusal is shown") { try await b.text(result).hasPrefix("Refused") }
        let said = try await b.text(result)
        #expect(said.contains("Conflicting: \(dep)"), "\(said)")

        let requested = try #require(try await b.all("[data-testid=deployment-row][data-status=requested]").first)
        let id = try #require(try await b.attribute(requested, "data-id"))
        try await b.click("[data-testid=deployment-row][data-id=\"\(id)\"] button[data-action=confirm]")
        let dialog = try await b.find("dialog [data-testid=deployment-action-form]")
        try await b.click(try await b.find("button[type=submit]", in: dialog))
        try await b.find("[data-testid=deployment-row][data-id=\"\(id)\"][data-status=confirmed]")
        let now = try await d.call("GET", "/v1/deployments/\(id)", token: d.viewer).json
        #expect(now["status"] as? String == "confirmed")
        try await Self.shoot(b, "surge-desktop")
    }

    @Test("tasks: a task made in the form appears on the board; starting it moves its card; replay lists the response's events and shows the state as of a moment")
    func tasksAndReplay() async throws {
        guard let (d, b) = try await Self.start() else { return }
        defer { Task { await b.quit(); await d.stop() } }
        try await Self.page(b, d, "/console/tasks?response=\(Self.response)", ready: "[data-testid=task-form] select[name=cluster] option[value=WSH]")
        let form = try await b.find("[data-testid=task-form]")
        try await b.script("arguments[0].elements.cluster.value = 'WSH'; arguments[0].elements.priority.value = 'urgent'", [form])
        try await b.fill(form, "title", "Chlorinate wells in Guiuan")
        try await b.click(try await b.find("[data-testid=task-submit]", in: form))
        let result = try await b.find("[data-testid=form-result]", in: form)
        try await b.wait("the task is created") { try await b.text(result).hasPrefix("Created") }
        let id = String(try await b.text(result).dropFirst("Created ".count).dropLast())
        let card = "[data-testid=task-card][data-id=\"\(id)\"][data-status=open]"
        #expect(try await b.text(card).contains("Chlorinate wells in Guiuan"))
        try await b.click(card + " button[data-action=start]")
        try await b.click(try await b.find("button[type=submit]", in: try await b.find("dialog [data-testid=task-action-form]")))
        try await b.find("[data-testid=task-card][data-id=\"\(id)\"][data-status=in_progress]")

        try await Self.page(b, d, "/console/replay?response=\(Self.response)", ready: "[data-testid=timeline-row]")
        let timeline = try await d.call("GET", "/v1/responses/\(Self.response)/timeline", token: d.viewer).json["items"] as? [[String: Any]] ?? []
        let shown = try await b.script("return [...document.querySelectorAll('[data-testid=timeline-row]')].map(e => Number(e.dataset.position))") as? [Int] ?? []
        #expect(!shown.isEmpty && shown == timeline.compactMap { $0["position"] as? Int }, "the page lists the response's events, in order")
        // As of the declaration's day, by occurred time: the API's state then, as the page says it.
        let moment = "2026-10-05T12:00:00Z"
        let state = try await d.call("GET", "/v1/responses/\(Self.response)/state?as_of=\(moment)&basis=occurred", token: d.viewer).json
        try await b.script("""
            const i = document.querySelector('[data-testid=asof-input]');
            const t = new Date(arguments[0]); const p = n => String(n).padStart(2, '0');
            i.value = `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}T${p(t.getHours())}:${p(t.getMinutes())}`;
            i.dispatchEvent(new Event('change'));
            """, [moment])
        try await b.wait("the state as of then") { try await b.text("[data-testid=state-summary]").contains("\(state["events_applied"] as? Int ?? -1) events applied") }
        try await Self.shoot(b, "replay-desktop")
    }

    @Test("a viewer's pages have no form; on a 360 px phone no page scrolls sideways and every control has a label; nothing is asked of another host")
    func viewerOnAPhone() async throws {
        guard let (d, b) = try await Self.start(.viewer, width: 360, height: 780) else { return }
        defer { Task { await b.quit(); await d.stop() } }
        try await b.resize(width: 360, height: 780)
        let pages: [(String, String)] = [
            ("overview", "[data-testid=alert-row]"), ("surge", "[data-testid=deployment-row]"), ("stock", "[data-testid=stock-row]"),
            ("tasks", "[data-testid=task-card]"), ("replay", "[data-testid=timeline-row]"),
        ]
        var loads: [String] = []
        for (page, ready) in pages {
            try await Self.page(b, d, "/console/\(page)?response=\(Self.response)", ready: ready)
            // Milliseconds from the navigation to the demo data on the page (within the 100 ms of a find's polling).
            let ms = try await b.script("return Math.round(performance.now())") as? Int ?? -1
            let bytes = try await b.script("""
                return [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]
                  .filter(e => new URL(e.name).pathname.startsWith('/console')).reduce((a, e) => a + e.decodedBodySize, 0)
                """) as? Int ?? -1
            loads.append("\(page) \(ms) ms")
            #expect(bytes > 0 && bytes <= 150_000, "\(page): the console's own files are \(bytes) bytes uncompressed (at most 150 KB)")
            try await Task.sleep(nanoseconds: 300_000_000)
            let forms = try await b.all("[data-testid$='-form']").count + (try await b.all("main form")).count
            #expect(forms == 0, "\(page): a viewer sees no form")
            #expect(try await b.all("main button[data-action]").isEmpty, "\(page): nor a lifecycle action")
            let widths = try await b.script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]") as? [Int] ?? []
            #expect(widths.count == 2 && widths[0] <= widths[1], "\(page): \(widths) (scroll width, viewport width)")
            let unlabelled = try await b.script("""
                return [...document.querySelectorAll('input, select, textarea, button')].filter(e => e.offsetParent !== null)
                  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.textContent || '').trim())
                  .map(e => e.outerHTML.slice(0, 80))
                """) as? [String] ?? ["?"]
            #expect(unlabelled.isEmpty, "\(page): controls without a label: \(unlabelled)")
            let lowContrast = try await b.script(Self.contrastScript) as? [String] ?? ["?"]
            #expect(lowContrast.isEmpty, "\(page): text under WCAG AA contrast (4.5:1, 3:1 when large): \(lowContrast.prefix(5))")
            if page == "stock" { try await Self.shoot(b, "stock-phone") }
            if page == "overview" { try await Self.shoot(b, "overview-phone") }
        }
        print("console: demo data shown after \(loads.joined(separator: ", ")) (phone size, debug build)")
        let origins = try await b.script("return [...new Set(performance.getEntriesByType('resource').map(e => new URL(e.name).origin))]") as? [String] ?? []
        #expect(origins.allSatisfy { $0 == "http://127.0.0.1:\(d.port)" }, "\(origins)")
    }

    @Test("keyboard: Tab goes from field to field in order, and Enter in a field records the receipt")
    func keyboard() async throws {
        guard let (d, b) = try await Self.start() else { return }
        defer { Task { await b.quit(); await d.stop() } }
        try await Self.page(b, d, "/console/stock", ready: "[data-testid=receipt-form]")
        let form = try await b.find("[data-testid=receipt-form]")
        try await b.click(try await b.find("[name=warehouse]", in: form))
        let tab = "\u{E004}", enter = "\u{E007}"
        let active = "return document.activeElement"
        try await b.type(try await Self.focused(b, active), "GUI" + tab + "KRELSHEK02" + tab)
        let focusedName = try await b.script("return document.activeElement.name") as? String
        #expect(focusedName == "quantity", "Tab goes from field to field in order: now at \(focusedName ?? "nothing")")
        try await b.type(try await Self.focused(b, active), "40" + enter)
        let result = try await b.find("[data-testid=form-result]", in: form)
        try await b.wait("Enter submits the receipt") { try await b.text(result).hasPrefix("Received") }
        let line = try await d.call("GET", "/v1/stock/ledger?warehouse=GUI&item=KRELSHEK02&movement=receipt&limit=1000", token: d.viewer).json["items"] as? [[String: Any]]
        #expect(line?.last?["quantity"] as? Int == 40, "the receipt the keyboard made is on the stock card")
    }

    /// Every visible text's contrast with what is behind it (WCAG 2 relative luminance; the first opaque
    /// background up the tree), readable in bright light: the ones under AA.
    static let contrastScript = """
        const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
        const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
          .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
        const behind = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3); } return [255, 255, 255]; };
        const out = [];
        for (const e of document.querySelectorAll('body *')) {
          if (e.closest('svg') || !e.offsetParent) continue;
          if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
          const st = getComputedStyle(e);
          const [a, b] = [lum(rgb(st.color).slice(0, 3)), lum(behind(e))];
          const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
          const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
          if (ratio < need) out.push(`${e.tagName} "${e.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
        }
        return out;
        """

    static func focused(_ b: Browser, _ script: String) async throws -> Browser.Element {
        let e = try await b.script(script) as? [String: Any]
        return Browser.Element(id: try #require(e?[Browser.elementKey] as? String))
    }
}
