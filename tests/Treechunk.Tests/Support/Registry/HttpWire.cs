using System.Globalization;
using System.Text;

namespace Treechunk.Tests.Support.Registry;

/// <summary>
/// The few pieces of HTTP/1.1 message framing (RFC 9112) that <see cref="TokenServer"/> and
/// <see cref="FaultProxy"/> share. Written by hand rather than taken from HttpListener or Kestrel
/// because the proxy must see, count, cut and alter bodies byte by byte, on the wire, and must keep
/// the framing (Content-Length or chunked) the peers chose, which no server framework exposes.
/// </summary>
internal sealed class HttpHead
{
    public string StartLine { get; set; }
    public List<KeyValuePair<string, string>> Headers { get; } = [];

    public HttpHead(string startLine) => StartLine = startLine;

    private string[] Parts => StartLine.Split(' ', 3);
    /// <summary>Request method (request heads only).</summary>
    public string Method => Parts[0];
    /// <summary>Request target, path and query (request heads only).</summary>
    public string Target => Parts.Length > 1 ? Parts[1] : "";
    public string Path => Target.Split('?', 2)[0];
    public string Query => Target.Contains('?') ? Target.Split('?', 2)[1] : "";
    /// <summary>Response status (response heads only).</summary>
    public int Status => int.Parse(Parts[1], CultureInfo.InvariantCulture);

    public string? Get(string name) => Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public void Set(string name, string value)
    {
        Remove(name);
        Headers.Add(new(name, value));
    }

    public void Remove(string name) => Headers.RemoveAll(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase));

    public bool HasToken(string header, string token) =>
        Headers.Where(h => h.Key.Equals(header, StringComparison.OrdinalIgnoreCase))
            .SelectMany(h => h.Value.Split(','))
            .Any(v => v.Trim().Equals(token, StringComparison.OrdinalIgnoreCase));

    public byte[] ToBytes()
    {
        var sb = new StringBuilder(StartLine).Append("\r\n");
        foreach (var (k, v) in Headers) sb.Append(k).Append(": ").Append(v).Append("\r\n");
        return Encoding.Latin1.GetBytes(sb.Append("\r\n").ToString());
    }

    public static HttpHead Response(int status, string reason, params (string Name, string Value)[] headers)
    {
        var head = new HttpHead($"HTTP/1.1 {status} {reason}");
        foreach (var (n, v) in headers) head.Headers.Add(new(n, v));
        return head;
    }
}

internal enum FramingKind { None, Length, Chunked, UntilClose }

internal readonly record struct Framing(FramingKind Kind, long Length = 0)
{
    public static Framing OfRequest(HttpHead head)
    {
        if (head.HasToken("Transfer-Encoding", "chunked")) return new(FramingKind.Chunked);
        var cl = head.Get("Content-Length");
        return cl != null && long.Parse(cl, CultureInfo.InvariantCulture) > 0 ? new(FramingKind.Length, long.Parse(cl, CultureInfo.InvariantCulture)) : new(FramingKind.None);
    }

    public static Framing OfResponse(HttpHead head, string requestMethod)
    {
        var status = head.Status;
        if (requestMethod == "HEAD" || status / 100 == 1 || status == 204 || status == 304) return new(FramingKind.None);
        if (head.HasToken("Transfer-Encoding", "chunked")) return new(FramingKind.Chunked);
        var cl = head.Get("Content-Length");
        if (cl != null) { var n = long.Parse(cl, CultureInfo.InvariantCulture); return n > 0 ? new(FramingKind.Length, n) : new(FramingKind.None); }
        return new(FramingKind.UntilClose);
    }
}

/// <summary>Thrown when a fault rule cut a body on purpose: the caller drops both connections.</summary>
internal sealed class ConnectionCutException() : Exception("connection cut by a fault rule");

/// <summary>A buffered reader over a connection that hands out heads, lines and raw body bytes.</summary>
internal sealed class WireReader(Stream inner)
{
    private const int MaxHead = 64 * 1024;
    private readonly byte[] _buf = new byte[64 * 1024];
    private int _pos, _len;

    private async ValueTask<bool> FillAsync(CancellationToken ct)
    {
        if (_pos < _len) return true;
        _pos = 0;
        _len = await inner.ReadAsync(_buf, ct);
        return _len > 0;
    }

    /// <summary>The first byte without consuming it, or -1 at end of stream.</summary>
    public async ValueTask<int> PeekAsync(CancellationToken ct) => await FillAsync(ct) ? _buf[_pos] : -1;

    public async ValueTask<int> ReadAsync(Memory<byte> dest, CancellationToken ct)
    {
        if (!await FillAsync(ct)) return 0;
        var n = Math.Min(dest.Length, _len - _pos);
        _buf.AsMemory(_pos, n).CopyTo(dest);
        _pos += n;
        return n;
    }

    /// <summary>A CRLF- (or LF-) terminated line without its terminator; null at end of stream.</summary>
    public async ValueTask<string?> ReadLineAsync(CancellationToken ct)
    {
        var line = new List<byte>();
        while (true)
        {
            if (!await FillAsync(ct)) return line.Count == 0 ? null : throw new IOException("connection closed inside a line");
            var nl = Array.IndexOf(_buf, (byte)'\n', _pos, _len - _pos);
            var end = nl < 0 ? _len : nl;
            line.AddRange(_buf.AsSpan(_pos, end - _pos));
            _pos = nl < 0 ? _len : nl + 1;
            if (line.Count > MaxHead) throw new InvalidDataException("line too long");
            if (nl >= 0)
            {
                if (line.Count > 0 && line[^1] == '\r') line.RemoveAt(line.Count - 1);
                return Encoding.Latin1.GetString(line.ToArray());
            }
        }
    }

    /// <summary>Reads a request or response head; null when the peer closed before sending one.</summary>
    public async Task<HttpHead?> ReadHeadAsync(CancellationToken ct)
    {
        var start = await ReadLineAsync(ct);
        while (start == "") start = await ReadLineAsync(ct); // tolerated blank lines between messages
        if (start == null) return null;
        var head = new HttpHead(start);
        while (true)
        {
            var line = await ReadLineAsync(ct) ?? throw new IOException("connection closed inside a head");
            if (line == "") return head;
            var colon = line.IndexOf(':');
            if (colon <= 0) throw new InvalidDataException($"bad header line '{line}'");
            head.Headers.Add(new(line[..colon].Trim(), line[(colon + 1)..].Trim()));
            if (head.Headers.Count > 500) throw new InvalidDataException("too many headers");
        }
    }

    /// <summary>
    /// Copies one body from this reader to <paramref name="dest"/> keeping its framing (chunk sizes
    /// are re-encoded, extensions dropped) and returns the payload bytes copied. <paramref name="alter"/>
    /// sees each piece of payload with its offset and may change it in place. With
    /// <paramref name="cutAfter"/> exactly that many payload bytes are sent, then
    /// <see cref="ConnectionCutException"/> is thrown.
    /// </summary>
    public async Task<long> CopyBodyAsync(Framing framing, Stream dest, CancellationToken ct,
        long? cutAfter = null, Action<long, Memory<byte>>? alter = null, bool payloadOnly = false)
    {
        var piece = new byte[32 * 1024];
        long offset = 0;

        async Task CopyPayload(long count, bool untilEnd)
        {
            while (untilEnd || count > 0)
            {
                var want = (int)(untilEnd ? piece.Length : Math.Min(piece.Length, count));
                var n = await ReadAsync(piece.AsMemory(0, want), ct);
                if (n == 0)
                {
                    if (untilEnd) return;
                    throw new IOException("connection closed inside a body");
                }
                var send = n;
                var cut = cutAfter != null && offset + n >= cutAfter.Value;
                if (cut) send = (int)(cutAfter!.Value - offset);
                alter?.Invoke(offset, piece.AsMemory(0, send));
                await dest.WriteAsync(piece.AsMemory(0, send), ct);
                offset += send;
                if (!untilEnd) count -= n;
                if (cut)
                {
                    await dest.FlushAsync(ct);
                    throw new ConnectionCutException();
                }
            }
        }

        if (cutAfter == 0) throw new ConnectionCutException();
        switch (framing.Kind)
        {
            case FramingKind.None:
                break;
            case FramingKind.Length:
                await CopyPayload(framing.Length, untilEnd: false);
                break;
            case FramingKind.UntilClose:
                await CopyPayload(0, untilEnd: true);
                break;
            case FramingKind.Chunked:
                while (true)
                {
                    var sizeLine = await ReadLineAsync(ct) ?? throw new IOException("connection closed before a chunk");
                    var size = long.Parse(sizeLine.Split(';')[0].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    if (size == 0)
                    {
                        var trailer = new StringBuilder("0\r\n");
                        string? t;
                        while (!string.IsNullOrEmpty(t = await ReadLineAsync(ct))) trailer.Append(t).Append("\r\n");
                        if (!payloadOnly) await dest.WriteAsync(Encoding.Latin1.GetBytes(trailer.Append("\r\n").ToString()), ct);
                        break;
                    }
                    if (!payloadOnly) await dest.WriteAsync(Encoding.Latin1.GetBytes(size.ToString("x", CultureInfo.InvariantCulture) + "\r\n"), ct);
                    await CopyPayload(size, untilEnd: false);
                    if (await ReadLineAsync(ct) != "") throw new InvalidDataException("chunk not followed by CRLF");
                    if (!payloadOnly) await dest.WriteAsync("\r\n"u8.ToArray(), ct);
                }
                break;
        }
        await dest.FlushAsync(ct);
        return offset;
    }

    /// <summary>Reads a whole (small) body into memory.</summary>
    public async Task<byte[]> ReadBodyAsync(Framing framing, CancellationToken ct)
    {
        using var ms = new MemoryStream();
        await CopyBodyAsync(framing, ms, ct, payloadOnly: true);
        return ms.ToArray();
    }
}
