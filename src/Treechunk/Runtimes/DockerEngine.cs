using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace Treechunk.Runtimes;

/// <summary>
/// A client of the Docker Engine API (no docker CLI needed): <c>GET /_ping</c> and
/// <c>POST /images/load</c> with the archive streamed as the request body (chunked), over
/// <c>unix:///var/run/docker.sock</c>, <c>DOCKER_HOST</c> or a given host (<c>unix://PATH</c>
/// or plain-HTTP <c>tcp://HOST:PORT</c>).
/// </summary>
public sealed class DockerEngine : IDisposable
{
    public const string DefaultHost = "unix:///var/run/docker.sock";

    private readonly HttpClient _http;
    private readonly Uri _base;
    /// <summary>The host as given (unix:///..., tcp://...).</summary>
    public string Host { get; }

    private DockerEngine(string host, HttpClient http, Uri baseUri)
    {
        Host = host;
        _http = http;
        _base = baseUri;
    }

    /// <param name="host">The daemon's address; null: $DOCKER_HOST, else the default socket.</param>
    public static DockerEngine Connect(string? host = null)
    {
        host ??= Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } env ? env : DefaultHost;
        if (host.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = host["unix://".Length..];
            if (path.Length == 0) throw new TreechunkException($"docker host '{host}' names no socket");
            var handler = new SocketsHttpHandler
            {
                UseProxy = false,
                ConnectCallback = async (_, ct) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            return new DockerEngine(host, new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan }, new Uri("http://docker/"));
        }
        if (host.StartsWith("tcp://", StringComparison.Ordinal))
        {
            if (Environment.GetEnvironmentVariable("DOCKER_TLS_VERIFY") is { Length: > 0 })
                throw new TreechunkException($"docker host {host}: TLS (DOCKER_TLS_VERIFY) is not supported; use a unix socket or plain tcp://");
            if (!Uri.TryCreate("http://" + host["tcp://".Length..].TrimEnd('/') + "/", UriKind.Absolute, out var uri))
                throw new TreechunkException($"invalid docker host '{host}' (expected unix:///PATH or tcp://HOST:PORT)");
            return new DockerEngine(host, new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = Timeout.InfiniteTimeSpan }, uri);
        }
        throw new TreechunkException($"unsupported docker host '{host}' (expected unix:///PATH or tcp://HOST:PORT)");
    }

    /// <summary>Checks that the daemon answers; returns its API version. A one-line error when nobody is there.</summary>
    public string Ping()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            using var response = _http.Send(new HttpRequestMessage(HttpMethod.Get, new Uri(_base, "_ping")), cts.Token);
            if (response.StatusCode != HttpStatusCode.OK)
                throw new TreechunkException($"the Docker daemon at {Host} answered /_ping with {(int)response.StatusCode} {response.ReasonPhrase}", ExitCodes.EnvironmentError);
            return response.Headers.TryGetValues("Api-Version", out var v) ? v.First() : "?";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or SocketException)
        {
            throw Unreachable(e);
        }
    }

    private TreechunkException Unreachable(Exception e)
    {
        var socketPath = Host.StartsWith("unix://", StringComparison.Ordinal) ? Host["unix://".Length..] : null;
        var cause = socketPath != null && !File.Exists(socketPath) ? $"no socket at {socketPath}"
            : e.InnerException is SocketException s ? s.Message : e is TaskCanceledException ? "no answer in 15 s" : e.Message;
        return new TreechunkException($"the Docker daemon at {Host} is not reachable: {cause} (is dockerd running? set DOCKER_HOST or --docker-host)", ExitCodes.EnvironmentError, e);
    }

    /// <summary>POST /images/load with the archive <paramref name="write"/> produces as the body; returns what the daemon says it loaded.</summary>
    public EngineLoadResult Load(Action<Stream> write)
    {
        var content = new PushContent(write);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
        string body;
        HttpStatusCode status;
        try
        {
            using var response = _http.Send(new HttpRequestMessage(HttpMethod.Post, new Uri(_base, "images/load?quiet=1")) { Content = content });
            status = response.StatusCode;
            using var reader = new StreamReader(response.Content.ReadAsStream());
            body = reader.ReadToEnd();
        }
        catch (Exception e) when (content.Error != null)
        {
            // Our side failed (a bad blob): that is the story, not the aborted request.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(content.Error).Throw();
            throw new InvalidOperationException("unreachable", e);
        }
        catch (Exception e) when (e is HttpRequestException or SocketException)
        {
            throw new TreechunkException($"the Docker daemon at {Host} dropped the load: {e.InnerException?.Message ?? e.Message}", ExitCodes.EnvironmentError, e);
        }
        var loaded = new List<string>();
        string? error = null;
        foreach (var line in body.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            JsonNode? node;
            try { node = JsonNode.Parse(line); }
            catch (System.Text.Json.JsonException) { node = null; }
            if (node is not JsonObject o)
            {
                error ??= status != HttpStatusCode.OK ? line.Trim() : null;
                continue;
            }
            if (o["error"] is { } err) error ??= (string?)err;
            else if (o["message"] is { } msg && status != HttpStatusCode.OK) error ??= (string?)msg;
            if ((string?)o["stream"] is { } s)
                foreach (var l in s.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    if (l.StartsWith("Loaded image", StringComparison.Ordinal)) loaded.Add(l[(l.IndexOf(':') + 1)..].Trim());
        }
        if (error != null || status != HttpStatusCode.OK)
            throw new TreechunkException($"the Docker daemon at {Host} refused the image: {error ?? ((int)status).ToString()}", ExitCodes.EnvironmentError);
        return new EngineLoadResult(loaded, body.Trim());
    }

    public void Dispose() => _http.Dispose();

    /// <summary>A request body written by a producer, of unknown length (sent chunked).</summary>
    private sealed class PushContent(Action<Stream> write) : HttpContent
    {
        public Exception? Error { get; private set; }

        protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            try
            {
                write(stream);
            }
            catch (Exception e) when (e is not IOException)
            {
                Error = e;
                throw;
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            Task.Run(() => SerializeToStream(stream, context, CancellationToken.None));

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
            Task.Run(() => SerializeToStream(stream, context, cancellationToken), cancellationToken);

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
