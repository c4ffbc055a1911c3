package wire

// Files travel as sealed chunks (docs/files.md): the sending device splits a
// file into chunks of ChunkSize bytes, seals each, uploads them with
// PutChunk, and then sends an ordinary message whose sealed body names the
// file, its size, its key and its chunks, and whose Send.Chunks lists the
// chunks' hashes so that the server lets the recipient's devices fetch them
// (GetChunk). The server stores each distinct chunk once, however many
// files or users use it, and never sees a file's name, size or content.

// ChunkSize is the plaintext size of a file chunk (the last one may be
// shorter); a sealed chunk is ChunkSize+16 bytes.
const ChunkSize = 256 << 10

// MaxChunk bounds a sealed chunk's size.
const MaxChunk = ChunkSize + 64

// PutChunk uploads one sealed chunk. Hash is the lowercase hex SHA-256 of
// Data; the server checks it, and answers OK once the chunk is durable
// (at once if it holds it already). Over the user's storage quota the answer
// is quota; with a full disk, unavailable, and nothing partial is kept.
type PutChunk struct {
	Ref  uint64 `json:"ref"`
	Hash string `json:"hash"`
	Data []byte `json:"data"`
}

// HaveChunks asks which of Hashes the server holds that this user uploaded
// or may fetch: answered with Chunks. A resumed upload sends only the
// others; a resumed download fetches only what it lacks locally.
type HaveChunks struct {
	Ref    uint64   `json:"ref"`
	Hashes []string `json:"hashes"`
}

// Chunks answers HaveChunks.
type Chunks struct {
	Ref  uint64   `json:"ref"`
	Have []string `json:"have"`
}

// GetChunk fetches one chunk that a message to or from the user (Send.Chunks)
// references: answered with Chunk, or no_such_chunk.
type GetChunk struct {
	Ref  uint64 `json:"ref"`
	Hash string `json:"hash"`
}

// Chunk answers GetChunk.
type Chunk struct {
	Ref  uint64 `json:"ref"`
	Hash string `json:"hash"`
	Data []byte `json:"data"`
}

// MaxHashes bounds the hashes in one HaveChunks and the chunks one message
// carries (Send.Chunks): 8192 chunks of ChunkSize are a 2 GiB file.
const MaxHashes = 8192
