using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Treechunk.Scanning;

/// <summary>Where Clair fetches one layer from: the registry's blob URL and the headers that let it in.</summary>
public sealed record ClairLayer(string Digest, Uri Uri, IReadOnlyDictionary<string, string[]> Headers);

/// <summary>
/// A client of Clair v4's HTTP API: the manifest goes to the indexer (POST
/// /indexer/api/v1/index_report; Clair fetches the layers itself from the URIs given), the
/// index report is polled until its state is final, and the matcher's vulnerability report
/// (GET /matcher/api/v1/vulnerability_report/{digest}) is turned into a <see cref="ScanReport"/>'s
/// inventory and findings, so every output format renders it as it renders our own scan.
/// </summary>
public sealed class ClairClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _base;
    private readonly TimeSpan _indexTimeout;
    private readonly Action<string>? _log;

    public ClairClient(Uri baseUrl, TimeSpan? indexTimeout = null, Action<string>? log = null, HttpMessageHandler? handler = null)
    {
        if (baseUrl.Scheme is not ("http" or "https")) throw new TreechunkException($"--clair-url {baseUrl}: expected an http:// or https:// URL");
        _base = baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl : new Uri(baseUrl.AbsoluteUri + "/");
        _http = handler != null ? new HttpClient(handler) : new HttpClient();
        _http.Timeout = TimeSpan.FromMinutes(10);
        _indexTimeout = indexTimeout ?? TimeSpan.FromMinutes(10);
        _log = log;
    }

    /// <summary>Indexes the manifest (a no-op for Clair when it knows it already) and returns the matcher's report as JSON.</summary>
    public JsonObject Scan(string manifestDigest, IReadOnlyList<ClairLayer> layers)
    {
        var body = new JsonObject
        {
            ["hash"] = manifestDigest,
            ["layers"] = new JsonArray(layers.Select(l => (JsonNode)new JsonObject
            {
                ["hash"] = l.Digest,
                ["uri"] = l.Uri.AbsoluteUri,
                ["headers"] = new JsonObject(l.Headers.Select(h => KeyValuePair.Create(h.Key, (JsonNode?)new JsonArray(h.Value.Select(v => (JsonNode)v).ToArray())))),
            }).ToArray()),
        };
        _log?.Invoke($"clair: submitting manifest {manifestDigest} ({layers.Count} layers) to the indexer");
        var report = Send(HttpMethod.Post, "indexer/api/v1/index_report", body, "submitting the manifest to the indexer");
        var deadline = DateTime.UtcNow + _indexTimeout;
        var delay = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            var state = (string?)report["state"];
            if (report["err"] is JsonValue err && ((string?)err) is { Length: > 0 } message)
                throw new TreechunkException($"clair could not index {manifestDigest}: {message}", ExitCodes.EnvironmentError);
            if (state == "IndexFinished" || (state == null && (bool?)report["success"] == true)) break;
            if (state == "IndexError") throw new TreechunkException($"clair could not index {manifestDigest} (state IndexError)", ExitCodes.EnvironmentError);
            if (DateTime.UtcNow > deadline) throw new TreechunkException($"clair did not finish indexing {manifestDigest} within {_indexTimeout.TotalMinutes:0} minutes (state {state})", ExitCodes.EnvironmentError);
            Thread.Sleep(delay);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            report = Send(HttpMethod.Get, "indexer/api/v1/index_report/" + manifestDigest, null, "reading the index report");
        }
        _log?.Invoke($"clair: indexed {manifestDigest}; asking the matcher");
        return Send(HttpMethod.Get, "matcher/api/v1/vulnerability_report/" + manifestDigest, null, "reading the vulnerability report");
    }

    private JsonObject Send(HttpMethod method, string path, JsonNode? body, string what)
    {
        var uri = new Uri(_base, path);
        using var request = new HttpRequestMessage(method, uri);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (body != null) request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        HttpResponseMessage response;
        try
        {
            response = _http.Send(request, HttpCompletionOption.ResponseContentRead);
        }
        catch (HttpRequestException e)
        {
            var inner = e.InnerException?.Message ?? e.Message;
            throw new TreechunkException($"cannot reach Clair at {_base.GetLeftPart(UriPartial.Authority)}: {inner.Split('\n')[0]}", ExitCodes.EnvironmentError, e);
        }
        catch (TaskCanceledException e)
        {
            throw new TreechunkException($"Clair at {_base.GetLeftPart(UriPartial.Authority)} timed out {what}", ExitCodes.EnvironmentError, e);
        }
        using (response)
        {
            var text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            if (!response.IsSuccessStatusCode)
            {
                // Clair's errors are {"code": "...", "message": "..."}.
                string detail = "";
                try
                {
                    if (JsonNode.Parse(text) is JsonObject o && (string?)o["message"] is { } m) detail = ": " + m;
                }
                catch (JsonException) { }
                var exit = response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound ? ExitCodes.BadInput : ExitCodes.EnvironmentError;
                throw new TreechunkException($"clair {what}: {(int)response.StatusCode} {response.ReasonPhrase}{detail}", exit);
            }
            try
            {
                return JsonNode.Parse(text) as JsonObject ?? throw new TreechunkException($"clair {what}: the answer is not a JSON object", ExitCodes.EnvironmentError);
            }
            catch (JsonException e)
            {
                throw new TreechunkException($"clair {what}: the answer is not JSON ({e.Message.Split('\n')[0]})", ExitCodes.EnvironmentError, e);
            }
        }
    }

    /// <summary>Clair's vulnerability report as our inventory and findings.</summary>
    public static (PackageInventory Inventory, List<Finding> Findings) Interpret(JsonObject report)
    {
        Distro? distro = null;
        if (report["distributions"] is JsonObject dists && dists.Select(kv => kv.Value).OfType<JsonObject>().FirstOrDefault() is { } d)
            distro = new Distro((string?)d["did"] ?? ((string?)d["name"])?.ToLowerInvariant() ?? "unknown", (string?)d["version_id"], (string?)d["version_code_name"], (string?)d["pretty_name"], []);

        var packages = new Dictionary<string, InstalledPackage>(StringComparer.Ordinal);
        var databases = new SortedSet<string>(StringComparer.Ordinal);
        if (report["packages"] is JsonObject pkgs)
            foreach (var (id, node) in pkgs)
            {
                if (node is not JsonObject p || (string?)p["name"] is not { } name) continue;
                var env = (report["environments"] as JsonObject)?[id] is JsonArray envs ? envs.OfType<JsonObject>().FirstOrDefault() : null;
                var db = (string?)env?["package_db"] ?? "";
                if (db.Length > 0) databases.Add(db);
                var type = db.Contains("rpm", StringComparison.OrdinalIgnoreCase) || (string?)p["kind"] == "rpm" ? PackageType.Rpm : PackageType.Deb;
                var version = (string?)p["version"] ?? "";
                var source = p["source"] as JsonObject;
                packages[id] = new InstalledPackage(type, name, version, (string?)p["arch"] ?? "",
                    (string?)source?["name"] is { Length: > 0 } sn ? sn : name, (string?)source?["version"] is { Length: > 0 } sv ? sv : version);
            }

        var findings = new List<Finding>();
        var vulns = report["vulnerabilities"] as JsonObject;
        if (report["package_vulnerabilities"] is JsonObject pv && vulns != null)
            foreach (var (pkgId, ids) in pv)
            {
                if (!packages.TryGetValue(pkgId, out var package) || ids is not JsonArray list) continue;
                foreach (var vid in list.Select(x => (string?)x).OfType<string>())
                {
                    if (vulns[vid] is not JsonObject v) continue;
                    var name = (string?)v["name"] ?? vid;
                    var rating = Ratings.FromWord((string?)v["normalized_severity"], "clair") ?? Ratings.FromWord((string?)v["severity"], "clair");
                    var links = ((string?)v["links"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    var fixedIn = (string?)v["fixed_in_version"];
                    var description = (string?)v["description"];
                    findings.Add(new Finding(name, [], description?.Split('\n', 2)[0].Trim() is { Length: > 0 } s ? s : null, rating, package,
                        string.IsNullOrEmpty(fixedIn) ? null : fixedIn, links.FirstOrDefault() ?? $"https://osv.dev/vulnerability/{Uri.EscapeDataString(name)}"));
                }
            }
        findings = findings.DistinctBy(f => (f.Id, f.Package)).OrderByDescending(f => f.Severity).ThenBy(f => f.Id, StringComparer.Ordinal)
            .ThenBy(f => f.Package.Name, StringComparer.Ordinal).ToList();
        var sorted = packages.Values.OrderBy(p => p.Type).ThenBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Architecture, StringComparer.Ordinal).ToList();
        return (new PackageInventory(distro, sorted, databases.ToList(), []), findings);
    }

    public void Dispose() => _http.Dispose();
}
