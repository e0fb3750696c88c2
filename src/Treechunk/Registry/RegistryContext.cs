using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace Treechunk.Registry;

/// <summary>What a registry session did, for --json summaries and the metrics file.</summary>
public sealed class RegistryStats
{
    private long _sent, _received;
    private int _uploaded, _skipped, _mounted, _downloaded, _retries, _resumes;
    public long BytesSent => Interlocked.Read(ref _sent);
    public long BytesReceived => Interlocked.Read(ref _received);
    public int BlobsUploaded => _uploaded;
    public int BlobsSkipped => _skipped;
    public int BlobsMounted => _mounted;
    public int BlobsDownloaded => _downloaded;
    public int Retries => _retries;
    /// <summary>Transfers continued from where a broken connection left them (uploads from the registry's offset, downloads by Range).</summary>
    public int Resumes => _resumes;
    internal void Sent(long n) => Interlocked.Add(ref _sent, n);
    internal void Received(long n) => Interlocked.Add(ref _received, n);
    internal void Uploaded() => Interlocked.Increment(ref _uploaded);
    internal void Skipped() => Interlocked.Increment(ref _skipped);
    internal void Mounted() => Interlocked.Increment(ref _mounted);
    internal void Downloaded() => Interlocked.Increment(ref _downloaded);
    internal void Retried() => Interlocked.Increment(ref _retries);
    internal void Resumed() => Interlocked.Increment(ref _resumes);
}

/// <summary>
/// Everything registry access shares in one process: settings (registries.conf, with command-line
/// overrides), credentials, the HTTP pipeline (auth as a <see cref="DelegatingHandler"/> over a
/// retry handler that backs off and honours Retry-After), each registry's scheme, where blobs were
/// seen (for cross-repository mounts), and the counters.
/// </summary>
public sealed class RegistryContext : IDisposable
{
    private static RegistryContext? _default;
    private readonly ConcurrentDictionary<string, Uri> _bases = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _insecureHosts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, object> _probeLocks = new(StringComparer.Ordinal);
    private readonly SocketsHttpHandler _sockets;
    private readonly Lazy<RegistriesConf> _conf;
    private readonly Lazy<BlobLocations> _locations;

    public RegistryStats Stats { get; } = new();
    internal HttpClient Http { get; }
    /// <summary>The connection pool under the auth and retry handlers (a ping looks at the raw answer).</summary>
    internal SocketsHttpHandler Sockets => _sockets;
    internal AuthHandler Auth { get; }

    /// <summary>Credentials for every registry this run talks to (--username/--password), beating the auth files.</summary>
    public RegistryCredential? ExplicitCredential { get; init; }
    /// <summary>--insecure: plain HTTP or unverified TLS for every registry, whatever registries.conf says.</summary>
    public bool Insecure { get; init; }
    /// <summary>--upload-chunk-size: upload in PATCH chunks of this many bytes (default: registries.conf, else one request).</summary>
    public long? UploadChunkSize { get; set; }
    /// <summary>Told each retry and resume, for --verbose.</summary>
    public Action<string>? Log { get; init; }

    public RegistriesConf Conf => _conf.Value;
    public BlobLocations Locations => _locations.Value;

    /// <summary>The context of this process: what the CLI configured, else one from the environment alone.</summary>
    public static RegistryContext Default
    {
        get => _default ??= new RegistryContext();
        set => _default = value;
    }

    public RegistryContext()
    {
        _conf = new Lazy<RegistriesConf>(RegistriesConf.Load);
        _locations = new Lazy<BlobLocations>(BlobLocations.Load);
        _sockets = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(15),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
            // Blob GETs redirect to storage; .NET drops the Authorization header on the way.
            AllowAutoRedirect = true,
            MaxConnectionsPerServer = 16,
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = ValidateCertificate },
        };
        var retry = new ResilienceHandler(RetryPipeline()) { InnerHandler = _sockets };
        var tokenClient = new HttpClient(new ResilienceHandler(RetryPipeline()) { InnerHandler = _sockets }, disposeHandler: false)
        { Timeout = TimeSpan.FromMinutes(2) };
        Auth = new AuthHandler(retry, CredentialFor, tokenClient);
        Http = new HttpClient(Auth, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };
        Http.DefaultRequestHeaders.UserAgent.ParseAdd("treechunk/0.1");
    }

    private bool ValidateCertificate(object sender, System.Security.Cryptography.X509Certificates.X509Certificate? cert,
        System.Security.Cryptography.X509Certificates.X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None) return true;
        var host = (sender as SslStream)?.TargetHostName;
        return host != null && _insecureHosts.Keys.Any(h => h == host || h.StartsWith(host + ":", StringComparison.Ordinal));
    }

    /// <summary>
    /// Retries what is worth retrying: 408, 429 and 5xx answers (after the Retry-After they give)
    /// and dropped connections, with exponential backoff; never a TLS failure, never PATCH (an
    /// upload resumes from the registry's offset instead), never 401/403.
    /// </summary>
    private ResiliencePipeline<HttpResponseMessage> RetryPipeline()
    {
        var options = new HttpRetryStrategyOptions
        {
            MaxRetryAttempts = 4,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(250),
            MaxDelay = TimeSpan.FromSeconds(30),
            ShouldRetryAfterHeader = true,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome switch
            {
                { Exception: HttpRequestException e } => !IsTlsFailure(e) && !IsRefused(e) && args.Context.GetRequestMessage()?.Method != HttpMethod.Patch,
                { Exception: TaskCanceledException } => false,
                { Result: { } r } => r.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || ((int)r.StatusCode >= 500 && r.StatusCode != HttpStatusCode.NotImplemented)
                                     && args.Context.GetRequestMessage()?.Method != HttpMethod.Patch,
                _ => false,
            }),
            OnRetry = args =>
            {
                Stats.Retried();
                var what = args.Outcome.Result is { } r ? $"{(int)r.StatusCode} {r.ReasonPhrase}" : args.Outcome.Exception?.Message;
                Log?.Invoke($"retrying {args.Context.GetRequestMessage()?.Method} {args.Context.GetRequestMessage()?.RequestUri?.AbsolutePath} in {args.RetryDelay.TotalSeconds:0.0} s ({what})");
                return ValueTask.CompletedTask;
            },
        };
        return new ResiliencePipelineBuilder<HttpResponseMessage>().AddRetry(options).Build();
    }

    internal static bool IsTlsFailure(HttpRequestException e) => e.InnerException is AuthenticationException || e.HttpRequestError == HttpRequestError.SecureConnectionError;

    internal static bool IsRefused(HttpRequestException e) => e.HttpRequestError == HttpRequestError.ConnectionError &&
                                                              e.InnerException is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused };

    /// <summary>Settings for a repository: registries.conf's, with --insecure on top.</summary>
    public RegistrySettings? SettingsFor(string host, string? repository) => Conf.Find(host, repository);

    public bool IsInsecure(string host, string? repository) => Insecure || SettingsFor(host, repository)?.Insecure == true;

    internal RegistryCredential? CredentialFor(string host, string? repository) =>
        ExplicitCredential ?? Credentials.Find(host, repository);

    /// <summary>
    /// The base URL of a registry endpoint: https, or for an insecure registry https without
    /// certificate checks when it answers TLS and plain http when it does not (as docker does).
    /// </summary>
    internal Uri BaseUri(string endpoint, bool insecure)
    {
        if (_bases.TryGetValue(endpoint, out var known)) return known;
        var https = new Uri($"https://{endpoint}/");
        if (!insecure) return _bases.GetOrAdd(endpoint, https);
        _insecureHosts[endpoint] = true;
        // One probe per endpoint, not one per parallel worker that asks first.
        lock (_probeLocks.GetOrAdd(endpoint, _ => new object()))
        {
            if (_bases.TryGetValue(endpoint, out known)) return known;
            return Probe(endpoint, https);
        }
    }

    private Uri Probe(string endpoint, Uri https)
    {
        try
        {
            using var probe = new HttpRequestMessage(HttpMethod.Get, new Uri(https, "v2/"));
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            using var response = new HttpMessageInvoker(_sockets, disposeHandler: false).Send(probe, cts.Token);
            return _bases.GetOrAdd(endpoint, https);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
        {
            return _bases.GetOrAdd(endpoint, new Uri($"http://{endpoint}/"));
        }
    }

    public RegistryClient Client(RegistryName name, string? endpoint = null) =>
        new(this, name, endpoint ?? name.Endpoint);

    public void Dispose()
    {
        if (_locations.IsValueCreated) _locations.Value.Save();
        Http.Dispose();
        _sockets.Dispose();
    }
}
