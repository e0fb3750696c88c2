using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Treechunk.Tests.Support.Registry;

/// <summary>One request as it passed the proxy: what was forwarded and what the client got back.</summary>
public sealed record ProxiedRequest(string Method, string Target, int Status, long RequestBodyBytes, long ResponseBodyBytes, string? Range, string? Fault)
{
    public string Path => Target.Split('?', 2)[0];
    public override string ToString() => $"{Method} {Target} {(Status < 0 ? "cut" : Status.ToString(CultureInfo.InvariantCulture))} req={RequestBodyBytes} resp={ResponseBodyBytes}{(Range != null ? " range=" + Range : "")}{(Fault != null ? " fault=" + Fault : "")}";
}

/// <summary>
/// A rule of a <see cref="FaultProxy"/>: which requests it takes (method and a regex on the
/// request target) and on which matches it acts. <see cref="Fired"/> counts the times it acted,
/// so a test can assert the fault really happened before it asserts the client survived it.
/// </summary>
public sealed class FaultRule
{
    private int _matches, _fired;
    internal FaultRule(string kind, string method, string targetPattern, int firstMatch, int times, long offset, int status = 0, int? retryAfterSeconds = null)
    {
        Kind = kind;
        Method = method;
        Target = new Regex(targetPattern, RegexOptions.CultureInvariant);
        FirstMatch = firstMatch;
        Times = times;
        Offset = offset;
        Status = status;
        RetryAfterSeconds = retryAfterSeconds;
    }

    internal string Kind { get; }
    internal string Method { get; }
    internal Regex Target { get; }
    internal int FirstMatch { get; }
    internal int Times { get; }
    internal long Offset { get; }
    internal int Status { get; }
    internal int? RetryAfterSeconds { get; }
    public int Fired => Volatile.Read(ref _fired);

    /// <summary>Counts a matching request and says whether the rule acts on it.</summary>
    internal bool Take(HttpHead head)
    {
        if (!head.Method.Equals(Method, StringComparison.OrdinalIgnoreCase) || !Target.IsMatch(head.Target)) return false;
        var n = Interlocked.Increment(ref _matches);
        if (n < FirstMatch || n >= FirstMatch + Times) return false;
        Interlocked.Increment(ref _fired);
        return true;
    }
}

/// <summary>
/// A man in the middle between our registry client and a real docker-registry, on its own
/// loopback port: it forwards every request untouched (the Host header too, so the Location
/// URLs the registry builds point back at the proxy) except where a rule says to cut a request
/// or response body after N bytes, to flip one byte of a response body, or to answer with a
/// status (503 with Retry-After, say) instead of the registry. It also counts the body bytes
/// that really crossed it, which is what "a resumed transfer does not send bytes twice" is
/// measured by. One upstream connection per client connection, messages in order, as HTTP/1.1
/// without pipelining is.
/// </summary>
public sealed class FaultProxy : IDisposable
{
    private readonly string _upstreamHost;
    private readonly int _upstreamPort;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private readonly List<FaultRule> _rules = [];
    private readonly List<ProxiedRequest> _requests = [];
    private readonly List<IDisposable> _connections = [];
    private readonly Task _acceptLoop;

    public FaultProxy(RegistryServer upstream) : this("127.0.0.1", upstream.Port) { }

    public FaultProxy(string upstreamHost, int upstreamPort)
    {
        _upstreamHost = upstreamHost;
        _upstreamPort = upstreamPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }
    /// <summary>"127.0.0.1:PORT", as used in docker:// references.</summary>
    public string Host => $"127.0.0.1:{Port}";

    /// <summary>Forwards <paramref name="afterBytes"/> of the body of the <paramref name="onMatch"/>-th matching request, then drops both connections.</summary>
    public FaultRule CutRequestBody(string method, string targetPattern, long afterBytes, int onMatch = 1) =>
        Add(new FaultRule("cut-request", method, targetPattern, onMatch, 1, afterBytes));

    /// <summary>Sends <paramref name="afterBytes"/> of the response body of the <paramref name="onMatch"/>-th matching request, then drops both connections.</summary>
    public FaultRule CutResponseBody(string method, string targetPattern, long afterBytes, int onMatch = 1) =>
        Add(new FaultRule("cut-response", method, targetPattern, onMatch, 1, afterBytes));

    /// <summary>Inverts one bit of the response body byte at <paramref name="atOffset"/>, on <paramref name="times"/> matches from the <paramref name="onMatch"/>-th.</summary>
    public FaultRule FlipResponseBytes(string method, string targetPattern, long atOffset, int onMatch = 1, int times = int.MaxValue / 2) =>
        Add(new FaultRule("flip", method, targetPattern, onMatch, times, atOffset));

    /// <summary>Answers <paramref name="times"/> matching requests itself with <paramref name="status"/> (and Retry-After), never forwarding them.</summary>
    public FaultRule Respond(string method, string targetPattern, int status, int? retryAfterSeconds = null, int times = 1, int onMatch = 1) =>
        Add(new FaultRule("respond", method, targetPattern, onMatch, times, 0, status, retryAfterSeconds));

    private FaultRule Add(FaultRule rule)
    {
        lock (_lock) _rules.Add(rule);
        return rule;
    }

    public IReadOnlyList<ProxiedRequest> Requests { get { lock (_lock) return [.. _requests]; } }

    public IEnumerable<ProxiedRequest> Matching(string method, string targetPattern) =>
        Requests.Where(r => r.Method.Equals(method, StringComparison.OrdinalIgnoreCase) && Regex.IsMatch(r.Target, targetPattern, RegexOptions.CultureInvariant));

    public int Count(string method, string targetPattern) => Matching(method, targetPattern).Count();
    /// <summary>Request body bytes forwarded to the registry by matching requests.</summary>
    public long RequestBodyBytes(string method, string targetPattern) => Matching(method, targetPattern).Sum(r => r.RequestBodyBytes);
    /// <summary>Response body bytes sent to the client by matching requests.</summary>
    public long ResponseBodyBytes(string method, string targetPattern) => Matching(method, targetPattern).Sum(r => r.ResponseBodyBytes);

    public string Describe() => string.Join("\n", Requests);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            lock (_lock) _connections.Add(client);
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private FaultRule? RuleFor(HttpHead head, string kind)
    {
        lock (_lock) return _rules.FirstOrDefault(r => r.Kind == kind && r.Take(head));
    }

    private void Record(ProxiedRequest r)
    {
        lock (_lock) _requests.Add(r);
    }

    private async Task ServeAsync(TcpClient client)
    {
        var ct = _stop.Token;
        TcpClient? upstream = null;
        try
        {
            using (client)
            {
                var down = client.GetStream();
                var fromClient = new WireReader(down);
                Stream? up = null;
                WireReader? fromUpstream = null;
                while (!ct.IsCancellationRequested)
                {
                    var req = await fromClient.ReadHeadAsync(ct);
                    if (req == null) return;
                    var range = req.Get("Range");
                    var requestFraming = Framing.OfRequest(req);

                    if (RuleFor(req, "respond") is { } respond)
                    {
                        await fromClient.ReadBodyAsync(requestFraming, ct);
                        var body = Encoding.UTF8.GetBytes($"{{\"errors\":[{{\"code\":\"UNAVAILABLE\",\"message\":\"fault proxy answered {respond.Status}\"}}]}}");
                        var head = HttpHead.Response(respond.Status, "Fault", ("Content-Type", "application/json"),
                            ("Content-Length", body.Length.ToString(CultureInfo.InvariantCulture)));
                        if (respond.RetryAfterSeconds is { } s) head.Headers.Add(new("Retry-After", s.ToString(CultureInfo.InvariantCulture)));
                        await down.WriteAsync(head.ToBytes(), ct);
                        if (req.Method != "HEAD") await down.WriteAsync(body, ct);
                        await down.FlushAsync(ct);
                        Record(new ProxiedRequest(req.Method, req.Target, respond.Status, 0, req.Method == "HEAD" ? 0 : body.Length, range, $"respond {respond.Status}"));
                        continue;
                    }

                    if (up == null)
                    {
                        upstream = new TcpClient();
                        await upstream.ConnectAsync(_upstreamHost, _upstreamPort, ct);
                        lock (_lock) _connections.Add(upstream);
                        up = upstream.GetStream();
                        fromUpstream = new WireReader(up);
                    }

                    await up.WriteAsync(req.ToBytes(), ct);
                    var cutRequest = RuleFor(req, "cut-request");
                    long sent = 0;
                    try
                    {
                        sent = await fromClient.CopyBodyAsync(requestFraming, up, ct, cutAfter: cutRequest?.Offset);
                    }
                    catch (ConnectionCutException)
                    {
                        Record(new ProxiedRequest(req.Method, req.Target, -1, cutRequest!.Offset, 0, range, $"request cut after {cutRequest.Offset}"));
                        return;
                    }

                    var resp = await fromUpstream!.ReadHeadAsync(ct) ?? throw new IOException("registry closed the connection");
                    while (resp.Status / 100 == 1 && resp.Status != 101)
                    {
                        await down.WriteAsync(resp.ToBytes(), ct);
                        resp = await fromUpstream.ReadHeadAsync(ct) ?? throw new IOException("registry closed the connection");
                    }
                    await down.WriteAsync(resp.ToBytes(), ct);
                    var responseFraming = Framing.OfResponse(resp, req.Method);
                    var cutResponse = responseFraming.Kind == FramingKind.None ? null : RuleFor(req, "cut-response");
                    var flip = responseFraming.Kind == FramingKind.None ? null : RuleFor(req, "flip");
                    long delivered = 0;
                    try
                    {
                        delivered = await fromUpstream.CopyBodyAsync(responseFraming, down, ct, cutAfter: cutResponse?.Offset,
                            alter: flip == null ? null : (offset, piece) =>
                            {
                                if (flip.Offset >= offset && flip.Offset < offset + piece.Length) piece.Span[(int)(flip.Offset - offset)] ^= 0x01;
                            });
                    }
                    catch (ConnectionCutException)
                    {
                        Record(new ProxiedRequest(req.Method, req.Target, resp.Status, sent, cutResponse!.Offset, range, $"response cut after {cutResponse.Offset}"));
                        return;
                    }
                    Record(new ProxiedRequest(req.Method, req.Target, resp.Status, sent, delivered, range, flip != null ? $"flipped byte {flip.Offset}" : null));
                    if (req.HasToken("Connection", "close") || resp.HasToken("Connection", "close") || responseFraming.Kind == FramingKind.UntilClose) return;
                }
            }
        }
        catch (Exception) { /* a peer went away, or the proxy is stopping */ }
        finally
        {
            lock (_lock) _connections.Remove(client);
            if (upstream != null)
            {
                lock (_lock) _connections.Remove(upstream);
                upstream.Dispose();
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_lock) foreach (var c in _connections) c.Dispose();
        try { _acceptLoop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}
