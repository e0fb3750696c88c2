using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Treechunk.Tests.Support;

/// <summary>
/// A stand-in for Clair v4 (which cannot be installed here) that follows its published HTTP API:
/// POST /indexer/api/v1/index_report takes a Manifest {hash, layers: [{hash, uri, headers}]},
/// and, as Clair's indexer does, fetches every layer from its uri with the given headers and
/// checks its digest; the first answer is an unfinished IndexReport (state "FetchLayers"),
/// later GETs of /indexer/api/v1/index_report/{digest} say "IndexFinished";
/// GET /matcher/api/v1/vulnerability_report/{digest} returns the report the test set.
/// Runs on a free loopback port and stops with Dispose.
/// </summary>
public sealed class FakeClair : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Thread _thread;
    private readonly HttpClient _fetch = new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = true });
    private readonly Dictionary<string, int> _polls = new(StringComparer.Ordinal);

    public string Url { get; }
    /// <summary>The matcher's answer, by manifest digest; set by the test.</summary>
    public Func<string, JsonObject>? VulnerabilityReport { get; set; }
    /// <summary>Manifests submitted, as received.</summary>
    public List<JsonObject> Submitted { get; } = [];
    /// <summary>Layers fetched from their uri and found to have the digest they were named by.</summary>
    public List<string> VerifiedLayers { get; } = [];
    public List<string> Errors { get; } = [];

    public FakeClair()
    {
        for (int attempt = 0; ; attempt++)
        {
            var port = Registry.RegistryServer.FreeLoopbackPort();
            try
            {
                _listener.Prefixes.Clear();
                _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
                _listener.Start();
                Url = $"http://127.0.0.1:{port}";
                break;
            }
            catch (HttpListenerException) when (attempt < 5) { }
        }
        _thread = new Thread(Serve) { IsBackground = true };
        _thread.Start();
    }

    private void Serve()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = _listener.GetContext(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            try { Handle(ctx); }
            catch (Exception e)
            {
                lock (Errors) Errors.Add(e.Message);
                Reply(ctx, 500, new JsonObject { ["code"] = "internal", ["message"] = e.Message });
            }
        }
    }

    private void Handle(HttpListenerContext ctx)
    {
        var path = ctx.Request.Url!.AbsolutePath;
        if (ctx.Request.HttpMethod == "POST" && path == "/indexer/api/v1/index_report")
        {
            var body = JsonNode.Parse(new StreamReader(ctx.Request.InputStream).ReadToEnd())!.AsObject();
            lock (Submitted) Submitted.Add(body);
            var hash = (string)body["hash"]!;
            foreach (var layer in body["layers"]!.AsArray())
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, (string)layer!["uri"]!);
                if (layer["headers"] is JsonObject headers)
                    foreach (var (name, values) in headers)
                        foreach (var v in values!.AsArray()) request.Headers.TryAddWithoutValidation(name, (string)v!);
                using var response = _fetch.Send(request);
                if (!response.IsSuccessStatusCode)
                {
                    Reply(ctx, 201, new JsonObject { ["manifest_hash"] = hash, ["state"] = "IndexError", ["success"] = false, ["err"] = $"fetching {layer["hash"]}: {(int)response.StatusCode}" });
                    return;
                }
                using var stream = response.Content.ReadAsStream();
                var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(stream));
                if (digest != (string)layer["hash"]!) throw new InvalidOperationException($"layer {layer["hash"]} fetched as {digest}");
                lock (VerifiedLayers) VerifiedLayers.Add(digest);
            }
            lock (_polls) _polls[hash] = 0;
            Reply(ctx, 201, new JsonObject { ["manifest_hash"] = hash, ["state"] = "FetchLayers", ["success"] = false, ["err"] = "" });
            return;
        }
        if (ctx.Request.HttpMethod == "GET" && path.StartsWith("/indexer/api/v1/index_report/"))
        {
            var hash = path["/indexer/api/v1/index_report/".Length..];
            lock (_polls)
            {
                if (!_polls.ContainsKey(hash)) { Reply(ctx, 404, new JsonObject { ["code"] = "not-found", ["message"] = "unknown manifest" }); return; }
                _polls[hash]++;
            }
            Reply(ctx, 200, new JsonObject { ["manifest_hash"] = hash, ["state"] = "IndexFinished", ["success"] = true, ["err"] = "" });
            return;
        }
        if (ctx.Request.HttpMethod == "GET" && path.StartsWith("/matcher/api/v1/vulnerability_report/"))
        {
            var hash = path["/matcher/api/v1/vulnerability_report/".Length..];
            bool indexed;
            lock (_polls) indexed = _polls.GetValueOrDefault(hash) > 0;
            if (!indexed || VulnerabilityReport == null) { Reply(ctx, 404, new JsonObject { ["code"] = "not-found", ["message"] = "not indexed" }); return; }
            Reply(ctx, 200, VulnerabilityReport(hash));
            return;
        }
        Reply(ctx, 404, new JsonObject { ["code"] = "not-found", ["message"] = path });
    }

    private static void Reply(HttpListenerContext ctx, int status, JsonObject body)
    {
        var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength64 = bytes.Length;
        ctx.Response.OutputStream.Write(bytes);
        ctx.Response.Close();
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _fetch.Dispose();
    }
}
