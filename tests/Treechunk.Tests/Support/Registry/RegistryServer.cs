using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Treechunk.Tests.Support.Registry;

/// <summary>One request as docker-registry's access log reports it.</summary>
public sealed record RegistryRequest(string Method, string Path, string Query, int Status, long ResponseBytes, string UserAgent)
{
    public override string ToString() => $"{Method} {Path}{(Query.Length > 0 ? "?" + Query : "")} {Status}";
}

/// <summary>
/// A real docker-registry (distribution 2.8) on a loopback port, for tests of our registry client.
/// Built around the real program, not a fake, so the client meets a registry's real quirks
/// (upload sessions, Location headers, auth challenges). The request list comes from the
/// registry's own access log (Apache combined format on stdout), which names every request with
/// its final status, 4xx included; the JSON application log on stderr only names successes and
/// some errors, so it is kept for diagnostics only. Because a log line can trail the response a
/// client already saw, reading <see cref="Requests"/> first sends a marker request and waits for
/// its line: every request a finished client made is then in the list.
/// </summary>
public sealed class RegistryServer : IDisposable
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };
    private const string SyncMarker = "treechunk-log-sync=";

    // 127.0.0.1 - - [02/Dec/2026:22:22:48 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"
    private static readonly Regex AccessLine = new(
        "^\\S+ \\S+ \\S+ \\[[^\\]]*\\] \"(?<method>[A-Z]+) (?<uri>\\S+) [^\"]*\" (?<status>\\d{3}) (?<size>\\d+|-) \"(?:[^\"\\\\]|\\\\.)*\" \"(?<ua>.*)\"$",
        RegexOptions.Compiled);

    private readonly TempDir _dir;
    private readonly Process _process;
    private readonly object _lock = new();
    private readonly List<string> _stdout = [];
    private readonly StringBuilder _stderr = new();
    private int _baseline;
    private int _syncSeq;

    public int Port { get; }
    /// <summary>"127.0.0.1:PORT", as used in docker:// references.</summary>
    public string Host => $"127.0.0.1:{Port}";
    public string Url => $"http://{Host}";
    /// <summary>The filesystem storage root (inside the server's own scratch directory).</summary>
    public string StorageDir { get; }
    /// <summary>The exact configuration the registry runs with.</summary>
    public string ConfigYaml { get; }

    /// <summary>A registry anyone may push to and pull from.</summary>
    public static RegistryServer StartAnonymous() => new(_ => null);

    /// <summary>A registry that wants Basic credentials, from an htpasswd file (bcrypt) made by htpasswd -Bbn.</summary>
    public static RegistryServer StartWithHtpasswd(string user, string password, params (string User, string Password)[] moreUsers) => new(dir =>
    {
        var htpasswd = Tools.Require("htpasswd");
        var file = new StringBuilder();
        foreach (var (u, p) in moreUsers.Prepend((user, password)))
            file.Append(Proc.Check(htpasswd, "-Bbn", u, p).Trim()).Append('\n');
        var path = dir["htpasswd"];
        File.WriteAllText(path, file.ToString());
        return $"auth:\n  htpasswd:\n    realm: treechunk-test-registry\n    path: {path}\n";
    });

    /// <summary>A registry that wants Bearer tokens from <paramref name="tokens"/> and trusts its certificate.</summary>
    public static RegistryServer StartWithToken(TokenServer tokens) => new(_ =>
        $"auth:\n  token:\n    realm: {tokens.Realm}\n    service: {tokens.Service}\n    issuer: {tokens.Issuer}\n    rootcertbundle: {tokens.CertificatePemPath}\n");

    /// <summary>A registry with this text as its auth section (for tests of bad configurations).</summary>
    internal static RegistryServer StartWithAuthYaml(string authYaml) => new(_ => authYaml);

    private RegistryServer(Func<TempDir, string?> auth)
    {
        var exe = Tools.Require("docker-registry");
        _dir = new TempDir("registry-");
        try
        {
            StorageDir = _dir["storage"];
            Directory.CreateDirectory(StorageDir);
            var authYaml = auth(_dir) ?? "";
            var configPath = _dir["config.yml"];
            string? lastError = null;
            for (var attempt = 0; attempt < 5; attempt++)
            {
                var port = FreeLoopbackPort();
                var yaml =
                    "version: 0.1\n" +
                    "log:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: false\n" +
                    $"storage:\n  filesystem:\n    rootdirectory: {StorageDir}\n  delete:\n    enabled: true\n" +
                    "  maintenance:\n    uploadpurging:\n      enabled: false\n" +
                    $"http:\n  addr: 127.0.0.1:{port}\n  secret: {Guid.NewGuid():N}\n" +
                    authYaml;
                File.WriteAllText(configPath, yaml);
                var process = Launch(exe, configPath);
                var error = WaitUntilReady(process, port);
                if (error == null)
                {
                    _process = process;
                    Port = port;
                    ConfigYaml = yaml;
                    return;
                }
                Stop(process);
                lastError = error;
                if (!error.Contains("address already in use")) break;
                lock (_lock) { _stdout.Clear(); _stderr.Clear(); }
            }
            throw new InvalidOperationException(lastError);
        }
        catch
        {
            _dir.Dispose();
            throw;
        }
    }

    private Process Launch(string exe, string configPath)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _dir.Path,
        };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(configPath);
        // REGISTRY_* variables override the file; none may leak in from the environment.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("REGISTRY_", StringComparison.Ordinal)).ToList())
            psi.Environment.Remove(key);
        var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (_lock) { _stdout.Add(e.Data); Monitor.PulseAll(_lock); }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (_lock) _stderr.Append(e.Data).Append('\n');
        };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>Polls GET /v2/ until any HTTP answer; returns null when ready, else why not.</summary>
    private string? WaitUntilReady(Process p, int port)
    {
        var sw = Stopwatch.StartNew();
        var timeout = TimeSpan.FromSeconds(15);
        while (sw.Elapsed < timeout)
        {
            if (p.HasExited)
            {
                p.WaitForExit(); // drains the redirected streams
                return $"docker-registry exited with {p.ExitCode} before answering on 127.0.0.1:{port}\n--- stderr\n{Stderr}";
            }
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                using var resp = Http.GetAsync($"http://127.0.0.1:{port}/v2/", cts.Token).GetAwaiter().GetResult();
                return null; // 200 (anonymous) or 401 (auth): either way it serves
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                Thread.Sleep(10);
            }
        }
        return $"docker-registry did not answer GET http://127.0.0.1:{port}/v2/ within {timeout.TotalSeconds} s\n--- stderr\n{Stderr}";
    }

    internal static int FreeLoopbackPort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>What the registry wrote on stderr so far (JSON application log).</summary>
    public string Stderr { get { lock (_lock) return _stderr.ToString(); } }

    /// <summary>
    /// Stderr once it contains <paramref name="text"/>, or as it is after <paramref name="timeout"/>.
    /// The registry answers a request before its log line has crossed the pipe, so a test that
    /// asserts on the log right after the response must wait for the line, not race it.
    /// </summary>
    public string StderrOnceItSays(string text, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var now = Stderr;
            if (now.Contains(text, StringComparison.Ordinal) || DateTime.UtcNow > deadline) return now;
            Thread.Sleep(20);
        }
    }

    /// <summary>Every request since start (or <see cref="ClearRequests"/>), in the order the registry finished them.</summary>
    public IReadOnlyList<RegistryRequest> Requests
    {
        get
        {
            var lines = SyncLog();
            return lines.Skip(_baseline).Select(Parse).OfType<RegistryRequest>()
                .Where(r => !r.Query.Contains(SyncMarker)).ToList();
        }
    }

    /// <summary>Forgets the requests so far, so a later <see cref="Requests"/> shows only new ones.</summary>
    public void ClearRequests() => _baseline = SyncLog().Count;

    private static RegistryRequest? Parse(string line)
    {
        var m = AccessLine.Match(line);
        if (!m.Success) return null;
        var uri = m.Groups["uri"].Value;
        var q = uri.IndexOf('?');
        return new RegistryRequest(m.Groups["method"].Value, q < 0 ? uri : uri[..q], q < 0 ? "" : uri[(q + 1)..],
            int.Parse(m.Groups["status"].Value, CultureInfo.InvariantCulture),
            m.Groups["size"].Value == "-" ? 0 : long.Parse(m.Groups["size"].Value, CultureInfo.InvariantCulture),
            m.Groups["ua"].Value);
    }

    /// <summary>Sends a marker request and waits for its access-log line; returns a copy of all stdout lines.</summary>
    private List<string> SyncLog()
    {
        var marker = SyncMarker + Interlocked.Increment(ref _syncSeq).ToString(CultureInfo.InvariantCulture);
        using (Http.GetAsync($"{Url}/v2/?{marker}").GetAwaiter().GetResult()) { }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        lock (_lock)
        {
            while (!_stdout.Any(l => l.Contains(" /v2/?" + marker + " ")))
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                    throw new TimeoutException($"docker-registry's access log never showed {marker}\n--- stderr\n{_stderr}");
                Monitor.Wait(_lock, left);
            }
            return [.. _stdout];
        }
    }

    public int Count(string method, string pathRegex) =>
        Requests.Count(r => r.Method == method && Regex.IsMatch(r.Path, pathRegex));

    /// <summary>
    /// Finished blob uploads: a PUT that closes an upload session (201), or a monolithic POST with
    /// ?digest= (201). A chunked upload is POST + PATCH… + PUT, so this counts blobs, not requests.
    /// </summary>
    public int CountBlobUploads(string? repository = null) => Requests.Count(r =>
        r.Status == 201 && InRepo(r, repository) && IsUploadPath(r.Path) &&
        (r.Method == "PUT" || (r.Method == "POST" && HasParam(r.Query, "digest") && !HasParam(r.Query, "mount"))));

    /// <summary>Every POST, PATCH and PUT under /v2/NAME/blobs/uploads/, whatever its status.</summary>
    public int CountBlobUploadRequests(string? repository = null) => Requests.Count(r =>
        r.Method is "POST" or "PATCH" or "PUT" && InRepo(r, repository) && IsUploadPath(r.Path));

    /// <summary>Cross-repository mounts the registry performed (POST ?mount=&amp;from= answered 201).</summary>
    public int CountBlobMounts() => Requests.Count(r => r.Method == "POST" && r.Status == 201 && IsUploadPath(r.Path) && HasParam(r.Query, "mount"));

    /// <summary>GETs of one blob (any repository, any status).</summary>
    public int CountBlobGets(string digest) => Requests.Count(r => r.Method == "GET" && r.Path.EndsWith("/blobs/" + digest, StringComparison.Ordinal));

    /// <summary>HEADs of one blob (any repository, any status).</summary>
    public int CountBlobHeads(string digest) => Requests.Count(r => r.Method == "HEAD" && r.Path.EndsWith("/blobs/" + digest, StringComparison.Ordinal));

    private static bool IsUploadPath(string path) => Regex.IsMatch(path, "^/v2/.+/blobs/uploads/");
    private static bool InRepo(RegistryRequest r, string? repo) => repo == null || r.Path.StartsWith($"/v2/{repo}/blobs/", StringComparison.Ordinal);
    private static bool HasParam(string query, string name) => query.Split('&').Any(p => p.Split('=')[0] == name);

    private static void Stop(Process p)
    {
        try
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit(5000);
        }
        catch (InvalidOperationException) { }
        p.Dispose();
    }

    public void Dispose()
    {
        Stop(_process);
        _dir.Dispose();
    }
}
