using System.Diagnostics;
using System.Net.Sockets;

namespace Treechunk.Tests.Support;

/// <summary>
/// A real dockerd (Debian's docker.io 20.10) of the test's own: its data, exec root, pid file,
/// configuration and socket all live in one scratch directory, so it never meets the machine's
/// own daemon (if any) or another test's. vfs storage and no bridge or iptables, as DESIGN.md
/// section 6 says it runs here. Stopped (SIGTERM, then SIGKILL) and removed on Dispose.
/// </summary>
public sealed class DockerDaemon : IDisposable
{
    /// <summary>
    /// Debian's 20.10 client. Not PATH's docker: /usr/local/bin may hold a newer client whose
    /// minimum API version a 20.10 daemon does not speak.
    /// </summary>
    public const string Client = "/usr/bin/docker";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly Process? _process;
    private readonly StreamWriter? _log;
    private bool _logClosed;

    /// <summary>The scratch directory: data/, exec/, pid, daemon.json, docker.sock, dockerd.log.</summary>
    public string Dir { get; }
    public string SocketPath => Path.Join(Dir, "docker.sock");
    /// <summary>The daemon's address as DOCKER_HOST and --docker-host take it.</summary>
    public string Host => "unix://" + SocketPath;
    public string LogPath => Path.Join(Dir, "dockerd.log");

    public DockerDaemon()
    {
        var dockerd = Tools.Require("dockerd");
        if (!File.Exists(Client)) throw new Xunit.Sdk.XunitException($"required peer tool {Client} is not installed (apt-get install docker.io)");
        // A unix socket path holds at most 107 bytes, and containerd puts its own sockets a few
        // levels under the exec root: a short directory right under /tmp, whatever TMPDIR is.
        Dir = Path.Join("/tmp", "tcd-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Dir);
        try
        {
            // An empty configuration of our own: /etc/docker/daemon.json must not apply.
            File.WriteAllText(Path.Join(Dir, "daemon.json"), "{}\n");
            var psi = new ProcessStartInfo(dockerd)
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var a in new[]
            {
                "--config-file", Path.Join(Dir, "daemon.json"),
                "--iptables=false", "--bridge=none", "--storage-driver=vfs",
                "--data-root", Path.Join(Dir, "data"), "--exec-root", Path.Join(Dir, "exec"),
                "--pidfile", Path.Join(Dir, "pid"), "--host", Host,
            }) psi.ArgumentList.Add(a);
            _process = new Process { StartInfo = psi };
            _log = new StreamWriter(LogPath) { AutoFlush = true };
            _process.OutputDataReceived += (_, e) => Append(e.Data);
            _process.ErrorDataReceived += (_, e) => Append(e.Data);
            _process.Start();
            _process.StandardInput.Close();
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            WaitUntilItAnswers();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    // containerd, dockerd's child, may hold the output pipes a little past dockerd's exit.
    private void Append(string? line)
    {
        if (line == null || _log == null) return;
        lock (_log) if (!_logClosed) _log.WriteLine(line);
    }

    /// <summary>Polls GET /_ping on the socket until "OK"; a daemon that exits or never answers fails with its log.</summary>
    private void WaitUntilItAnswers()
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < StartTimeout)
        {
            if (_process!.HasExited)
                throw new InvalidOperationException($"dockerd exited with {_process.ExitCode} before answering on {SocketPath}\n--- log\n{Log}");
            if (File.Exists(SocketPath) && Ping()) return;
            Thread.Sleep(50);
        }
        throw new InvalidOperationException($"dockerd did not answer /_ping on {SocketPath} within {StartTimeout.TotalSeconds} s\n--- log\n{Log}");
    }

    private bool Ping()
    {
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(SocketPath));
            socket.ReceiveTimeout = 2000;
            socket.Send("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"u8);
            using var stream = new NetworkStream(socket);
            using var reader = new StreamReader(stream);
            var response = reader.ReadToEnd();
            return response.StartsWith("HTTP/1.0 200", StringComparison.Ordinal) && response.EndsWith("OK", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return false;
        }
    }

    /// <summary>What dockerd logged so far.</summary>
    public string Log
    {
        get
        {
            try
            {
                using var f = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                return new StreamReader(f).ReadToEnd();
            }
            catch (IOException) { return ""; }
        }
    }

    /// <summary>The environment that points the docker client (and treechunk) at this daemon only.</summary>
    public Dictionary<string, string> Env => new()
    {
        ["DOCKER_HOST"] = Host,
        // The client's own config (auths, contexts) must not come from the machine's ~/.docker.
        ["DOCKER_CONFIG"] = Path.Join(Dir, "client"),
    };

    /// <summary>Runs Debian's docker client against this daemon.</summary>
    public ProcResult Run(params string[] args) => Proc.Run(Client, args, env: Env, timeout: TimeSpan.FromMinutes(3));

    /// <summary>Runs the docker client and asserts success, returning stdout.</summary>
    public string Check(params string[] args)
    {
        var r = Run(args);
        if (r.ExitCode != 0) throw new Xunit.Sdk.XunitException($"docker {string.Join(' ', args)} failed: {r}\n--- dockerd log\n{Log}");
        return r.Stdout;
    }

    public void Dispose()
    {
        if (_process != null)
        {
            try
            {
                if (!_process.HasExited)
                {
                    // SIGTERM lets dockerd stop its containerd and unmount what it mounted (bash's
                    // kill builtin: procps's kill need not be installed).
                    Proc.Run("bash", ["-c", $"kill -TERM {_process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)}"]);
                    if (!_process.WaitForExit(TimeSpan.FromSeconds(30))) _process.Kill(entireProcessTree: true);
                }
                _process.WaitForExit(TimeSpan.FromSeconds(10)); // and the redirected output drained into the log
            }
            catch (InvalidOperationException) { /* never started */ }
            _process.Dispose();
        }
        if (_log != null)
            lock (_log)
            {
                _logClosed = true;
                _log.Dispose();
            }
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (Exception) { /* best effort: a leftover scratch directory must not fail a test */ }
    }
}
