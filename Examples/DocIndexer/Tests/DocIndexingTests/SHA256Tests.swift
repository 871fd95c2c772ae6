import Foundation
import Testing

@testable import DocIndexing

/// Known-answer tests from FIPS 180-4's examples (NIST "SHA-256" example values) and a
/// comparison with coreutils' `sha256sum` on real files.
@Suite struct SHA256Tests {
    @Test("empty message")
    func emptyMessage() {
        #expect(SHA256.hash([UInt8]()).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("abc")
    func abc() {
        #expect(SHA256.hash(Array("abc".utf8)).hexString
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("448-bit message, two blocks")
    func message448Bits() {
        let message = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        #expect(message.utf8.count * 8 == 448)
        #expect(SHA256.hash(Array(message.utf8)).hexString
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("896-bit message")
    func message896Bits() {
        let message = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
        #expect(message.utf8.count * 8 == 896)
        #expect(SHA256.hash(Array(message.utf8)).hexString
            == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    @Test("one million 'a' in uneven chunks")
    func oneMillionA() {
        var hasher = SHA256()
        var remaining = 1_000_000
        var chunkSize = 1
        while remaining > 0 {
            // Chunk sizes 1, 8, 64, 512, 4096, ... cross every block boundary case.
            let count = min(chunkSize, remaining)
            hasher.update([UInt8](repeating: UInt8(ascii: "a"), count: count))
            remaining -= count
            chunkSize = chunkSize >= 4096 ? 1 : chunkSize * 8
        }
        #expect(hasher.finalize().hexString == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("chunking does not change the digest")
    func chunkingIndependence() {
        let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = SHA256.hash(message)
        for chunkSize in [1, 3, 55, 56, 63, 64, 65, 127, 999] {
            var hasher = SHA256()
            for start in stride(from: 0, to: message.count, by: chunkSize) {
                hasher.update(Array(message[start..<min(start + chunkSize, message.count)]))
            }
            #expect(hasher.finalize() == whole, "chunk size \(chunkSize)")
        }
    }

    @Test("matches sha256sum on real files")
    func matchesSha256sum() throws {
        let candidates = [
            "/usr/share/common-licenses/GPL-3", "/etc/services", "/usr/bin/env",
            "/usr/share/doc/postgresql-15/changelog.Debian.gz",
        ]
        let paths = candidates.filter { FileManager.default.isReadableFile(atPath: $0) }
        try #require(!paths.isEmpty, "none of \(candidates) is readable")
        for path in paths {
            let expected = try sha256sum(path)
            #expect(try FileIndexer.index(path: path).sha256 == expected, "\(path)")
        }
    }

    /// Runs `/usr/bin/sha256sum path` and returns the digest it prints.
    private func sha256sum(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }
}
