/// SHA-256 as specified in FIPS 180-4 ("Secure Hash Standard", NIST, August 2015), section 6.2.
///
/// The hasher is incremental: feed any number of byte chunks with `update(_:)`, then call
/// `finalize()` once for the 32-byte digest. It keeps at most one partial 64-byte block, so
/// hashing a file of any size needs constant memory.
///
/// ```swift
/// var hasher = SHA256()
/// hasher.update(Array("abc".utf8))
/// let hex = hasher.finalize().hexString   // "ba7816bf..."
/// ```
///
/// This is a plain, portable implementation for the example; it is not hardened against
/// timing side channels and is not meant for secrets.
public struct SHA256: Sendable {
    /// The digest of the bytes fed so far, 32 bytes, big-endian words as FIPS 180-4 lists them.
    public struct Digest: Sendable, Hashable {
        /// The 32 digest bytes.
        public let bytes: [UInt8]

        /// The digest as 64 lowercase hexadecimal digits, as `sha256sum` prints it.
        public var hexString: String {
            let digits = Array("0123456789abcdef".utf8)
            var text = [UInt8]()
            text.reserveCapacity(64)
            for byte in bytes {
                text.append(digits[Int(byte >> 4)])
                text.append(digits[Int(byte & 0x0f)])
            }
            return String(decoding: text, as: UTF8.self)
        }
    }

    /// The round constants K0...K63 (FIPS 180-4, 4.2.2): the first 32 bits of the fractional
    /// parts of the cube roots of the first 64 primes.
    private static let roundConstants: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    /// The initial hash value H(0) (FIPS 180-4, 5.3.3): the first 32 bits of the fractional
    /// parts of the square roots of the first 8 primes.
    private static let initialState: [UInt32] = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
    ]

    private var state = SHA256.initialState
    /// Bytes of the current block not yet compressed; always fewer than 64 between calls.
    private var pendingBlock: [UInt8] = []
    /// The message length so far, in bytes.
    private var messageLength: UInt64 = 0

    /// Creates a hasher for an empty message.
    public init() {
        pendingBlock.reserveCapacity(64)
    }

    /// Returns the digest of `bytes` in one call.
    public static func hash(_ bytes: some Collection<UInt8>) -> Digest {
        var hasher = SHA256()
        hasher.update(Array(bytes))
        return hasher.finalize()
    }

    /// Appends `bytes` to the message.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { update($0) }
    }

    /// Appends the bytes in `buffer` to the message.
    public mutating func update(_ buffer: UnsafeBufferPointer<UInt8>) {
        messageLength &+= UInt64(buffer.count)
        var offset = 0

        // Complete a block left over from the previous call first.
        if !pendingBlock.isEmpty {
            let take = min(64 - pendingBlock.count, buffer.count)
            pendingBlock.append(contentsOf: buffer[0..<take])
            offset = take
            guard pendingBlock.count == 64 else { return }
            let block = pendingBlock
            block.withUnsafeBufferPointer { compress(UnsafeRawBufferPointer($0)) }
            pendingBlock.removeAll(keepingCapacity: true)
        }

        // Compress whole blocks straight from the caller's buffer.
        while buffer.count - offset >= 64 {
            compress(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[offset..<offset + 64])))
            offset += 64
        }
        pendingBlock.append(contentsOf: buffer[offset...])
    }

    /// Pads the message (FIPS 180-4, 5.1.1) and returns its digest. Call it once; further
    /// updates would hash the padding as message bytes.
    public mutating func finalize() -> Digest {
        let bitLength = messageLength &* 8
        // A single 1 bit, then zeros up to 56 bytes modulo 64, then the length as a 64-bit
        // big-endian integer.
        var padding: [UInt8] = [0x80]
        let lengthAfterMarker = (pendingBlock.count + 1) % 64
        let zeroCount = lengthAfterMarker <= 56 ? 56 - lengthAfterMarker : 120 - lengthAfterMarker
        padding.append(contentsOf: repeatElement(0, count: zeroCount))
        for shift in stride(from: 56, through: 0, by: -8) {
            padding.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        let lengthBeforePadding = messageLength
        update(padding)
        messageLength = lengthBeforePadding

        var digest = [UInt8]()
        digest.reserveCapacity(32)
        for word in state {
            digest.append(UInt8(truncatingIfNeeded: word >> 24))
            digest.append(UInt8(truncatingIfNeeded: word >> 16))
            digest.append(UInt8(truncatingIfNeeded: word >> 8))
            digest.append(UInt8(truncatingIfNeeded: word))
        }
        return Digest(bytes: digest)
    }

    /// Processes one 64-byte block (FIPS 180-4, 6.2.2 steps 1 to 4).
    private mutating func compress(_ block: UnsafeRawBufferPointer) {
        precondition(block.count == 64, "a SHA-256 block is 64 bytes")
        let constants = Self.roundConstants
        let hash = state
        // The message schedule W0...W63 lives on the stack, so no block allocates.
        let rounds = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            // Step 1: the message schedule. The first 16 words are the block, big-endian.
            for t in 0..<16 {
                let base = t * 4
                w[t] = UInt32(block[base]) << 24 | UInt32(block[base + 1]) << 16
                    | UInt32(block[base + 2]) << 8 | UInt32(block[base + 3])
            }
            for t in 16..<64 {
                w[t] = Self.smallSigma1(w[t - 2]) &+ w[t - 7] &+ Self.smallSigma0(w[t - 15]) &+ w[t - 16]
            }

            // Steps 2 and 3: 64 rounds over the working variables a...h.
            var a = hash[0], b = hash[1], c = hash[2], d = hash[3]
            var e = hash[4], f = hash[5], g = hash[6], h = hash[7]
            for t in 0..<64 {
                let choose = (e & f) ^ (~e & g)
                let majority = (a & b) ^ (a & c) ^ (b & c)
                let t1 = h &+ Self.bigSigma1(e) &+ choose &+ constants[t] &+ w[t]
                let t2 = Self.bigSigma0(a) &+ majority
                h = g
                g = f
                f = e
                e = d &+ t1
                d = c
                c = b
                b = a
                a = t1 &+ t2
            }

            return (a, b, c, d, e, f, g, h)
        }

        // Step 4: the intermediate hash value H(i).
        state[0] &+= rounds.0
        state[1] &+= rounds.1
        state[2] &+= rounds.2
        state[3] &+= rounds.3
        state[4] &+= rounds.4
        state[5] &+= rounds.5
        state[6] &+= rounds.6
        state[7] &+= rounds.7
    }

    // The four functions of FIPS 180-4, 4.1.2 (4.4 to 4.7).

    private static func rotateRight(_ x: UInt32, _ count: UInt32) -> UInt32 {
        (x >> count) | (x << (32 - count))
    }

    private static func bigSigma0(_ x: UInt32) -> UInt32 {
        rotateRight(x, 2) ^ rotateRight(x, 13) ^ rotateRight(x, 22)
    }

    private static func bigSigma1(_ x: UInt32) -> UInt32 {
        rotateRight(x, 6) ^ rotateRight(x, 11) ^ rotateRight(x, 25)
    }

    private static func smallSigma0(_ x: UInt32) -> UInt32 {
        rotateRight(x, 7) ^ rotateRight(x, 18) ^ (x >> 3)
    }

    private static func smallSigma1(_ x: UInt32) -> UInt32 {
        rotateRight(x, 17) ^ rotateRight(x, 19) ^ (x >> 10)
    }
}
