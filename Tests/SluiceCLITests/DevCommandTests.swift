import EmbeddedPostgres
import Foundation
import SluiceTestSupport
import Testing

@testable import SluiceCLI

@Suite(.timeLimit(.minutes(1))) struct DevCommandTests {
    /// Starts a server in `project/postgres` the way `sluice dev --directory project` would.
    private func startProjectServer() async throws -> (project: String, server: EmbeddedPostgres) {
        var template = Array("/tmp/sluice-cli-dev-XXXXXX".utf8CString)
        let project = try #require(mkdtemp(&template).map { String(cString: $0) })
        // mkdtemp creates the directory with mode 0700, so as root the postgres user could not enter it.
        #expect(chmod(project, 0o755) == 0)
        let server = EmbeddedPostgres(
            directory: URL(fileURLWithPath: project + "/postgres"), port: Int.random(in: 20_000...60_000),
            settings: ["fsync": "off"])
        try await DevCommand.offCooperativePool { try server.start() }
        return (project, server)
    }

    @Test func exportCommandQuotesValue() {
        #expect(
            DevCommand.exportCommand("host='/p/.sluice/postgres' port=5432 user=postgres dbname='sluice'")
                == "export DATABASE_URL=\"host='/p/.sluice/postgres' port=5432 user=postgres dbname='sluice'\"")
        #expect(DevCommand.exportCommand("host='/a$b\"c`d\\e'") == "export DATABASE_URL=\"host='/a\\$b\\\"c\\`d\\\\e'\"")
    }

    @Test(arguments: [false, true])
    func devRejectsRunningServer(onOtherPort: Bool) async throws {
        let (project, server) = try await startProjectServer()
        let pid = try #require(server.runningServerPID)
        let port = onOtherPort ? server.port + 1 : server.port

        let (code, captured) = await runTool(["dev", "--directory", project, "--port", String(port)], database: nil)

        #expect(code == .failure)
        #expect(captured.errorText.contains("a PostgreSQL server is already running in \(project)/postgres (pid \(pid))"))
        #expect(captured.errorText.contains("stop it or pass another --directory"))
        #expect(server.isRunning)
        #expect(server.runningServerPID == pid)

        try await DevCommand.offCooperativePool { try server.stop(mode: .immediate) }
        try? FileManager.default.removeItem(atPath: project)
    }
}
