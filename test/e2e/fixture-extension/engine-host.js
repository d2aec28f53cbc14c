// The fixture's stand-in for the engine host: answers each request with a suggestion that names this process; after
// a colon, a suggestion that starts on the next line, so the harness also reads multi-line ghost text.
process.on("message", (message) => {
  const text = message.prefix.endsWith(":") ? `\n        return n  # from host ${process.pid}` : `  # from host ${process.pid}`;
  process.send({ id: message.id, text });
});
