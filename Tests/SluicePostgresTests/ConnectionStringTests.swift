import SluicePostgres
import Testing

@Suite struct ConnectionStringTests {
    @Test(arguments: [
        "host=/tmp port=5432 dbname=app",
        "host='/tmp/with space' user=postgres",
        "postgresql://user@localhost:5432/app?sslmode=disable",
        "postgres://localhost/app",
        "app",
    ])
    func parsesValidStrings(_ connectionString: String) {
        #expect(PostgresConnection.connectionStringError(connectionString) == nil)
    }

    @Test(arguments: [
        ("garbage===", "invalid connection option"),
        ("host=/tmp port", "missing \"=\""),
        ("host='/tmp", "unterminated quoted string"),
        ("postgresql://user@localhost:5432/app?nosuchoption=1", "invalid URI query parameter"),
    ])
    func reportsLibpqMessage(_ connectionString: String, _ expected: String) throws {
        let message = try #require(PostgresConnection.connectionStringError(connectionString))
        #expect(message.contains(expected))
    }
}
