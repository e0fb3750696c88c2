using Treechunk.Tests.Registry;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Runtimes;

/// <summary>
/// Engines that are not there and inputs that are wrong: each one clear line (the CLI's
/// 'treechunk: error:' prefix, no stack trace) and a non-zero exit — 3 for the environment
/// (a missing binary, a daemon nobody runs), 2 for bad input.
/// </summary>
public class RuntimeBadInputTests(RuntimeImages fx) : IClassFixture<RuntimeImages>
{
    private static string Fails(int exit, IDictionary<string, string>? env, params string[] args)
    {
        var line = RegistryClientTests.Fails(new Dictionary<string, string>(env ?? new Dictionary<string, string>()), exit, args);
        Assert.StartsWith("treechunk: error: ", line);
        return line;
    }

    [Fact]
    public void Podman_that_is_not_installed()
    {
        using var tmp = new TempDir("no-podman");
        Directory.CreateDirectory(tmp["bin"]);
        var line = Fails(3, new Dictionary<string, string> { ["PATH"] = tmp["bin"] }, "oci", "import-podman", fx.Gzip.Ref);
        Assert.Contains("podman is not installed", line);
        Assert.Contains("apt-get install podman", line);
    }

    [Fact]
    public void Podman_that_fails_says_what_podman_said()
    {
        using var podman = new PodmanStore();
        var line = Fails(3, podman.Env, "oci", "import-podman", fx.Gzip.Ref, "--root", podman.Root, "--runroot", podman.RunRoot, "--storage-driver", "no-such-driver");
        Assert.Contains("podman load failed", line);
        Assert.Contains("no-such-driver", line);
    }

    [Fact]
    public void Docker_socket_that_does_not_exist()
    {
        using var tmp = new TempDir("no-docker");
        var socket = tmp["docker.sock"];
        var line = Fails(3, null, "oci", "import-docker", "--docker-host", "unix://" + socket, fx.Gzip.Ref);
        Assert.Contains($"no socket at {socket}", line);
        // The same from DOCKER_HOST.
        line = Fails(3, new Dictionary<string, string> { ["DOCKER_HOST"] = "unix://" + socket }, "oci", "import-docker", fx.Gzip.Ref);
        Assert.Contains($"no socket at {socket}", line);
        Assert.Contains("is dockerd running?", line);
    }

    [Fact]
    public void Docker_socket_file_that_nobody_listens_on()
    {
        using var tmp = new TempDir("stale-docker");
        var path = tmp["docker.sock"];
        // A daemon that died leaves its socket file: bound once, closed, never unlinked (by python:
        // .NET unlinks the path of a unix socket it bound when the socket is closed).
        Proc.Check("python3", "-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path);
        Assert.True(File.Exists(path));
        var line = Fails(3, null, "oci", "import-docker", "--docker-host", "unix://" + path, fx.Gzip.Ref);
        Assert.Contains($"the Docker daemon at unix://{path} is not reachable", line);
        Assert.Contains("Connection refused", line);
    }

    [Fact]
    public void Tcp_docker_host_that_nobody_listens_on()
    {
        var host = $"tcp://127.0.0.1:{RegistryServer.FreeLoopbackPort()}";
        var line = Fails(3, new Dictionary<string, string> { ["DOCKER_HOST"] = host }, "oci", "import-docker", fx.Gzip.Ref);
        Assert.Contains($"the Docker daemon at {host} is not reachable", line);
        Assert.Contains("Connection refused", line);
    }

    [Fact]
    public void Docker_host_of_an_unknown_kind()
    {
        var line = Fails(2, null, "oci", "import-docker", "--docker-host", "ssh://me@box", fx.Gzip.Ref);
        Assert.Contains("unsupported docker host 'ssh://me@box'", line);
    }

    [Fact]
    public void Source_image_that_does_not_exist()
    {
        using var tmp = new TempDir("no-image");
        using var podman = new PodmanStore();
        Assert.Contains(tmp["missing"], Fails(2, podman.Env, ["oci", "import-podman", $"oci:{tmp["missing"]}:v1", .. podman.Flags]));
        Assert.Contains("no image tagged 'v2'", Fails(2, podman.Env, ["oci", "import-podman", $"oci:{fx.Gzip.Layout}:v2", .. podman.Flags]));
        Assert.Contains(tmp["missing.tar"], Fails(2, null, "oci", "save", tmp["missing.tar"], tmp["out.tar"]));
        Assert.False(File.Exists(tmp["out.tar"]));
        Assert.Empty(podman.Names());
    }

    [Fact]
    public void Neither_or_both_an_image_and_seed_flags()
    {
        Assert.Contains("name the image", Fails(2, null, "oci", "import-podman"));
        Assert.Contains("not both", Fails(2, null, "oci", "import-podman", fx.Gzip.Ref, "--registry", "127.0.0.1:1", "--repository", "x/y"));
        Assert.Contains("--registry and --repository together", Fails(2, null, "oci", "import-docker", "--registry", "127.0.0.1:1"));
    }

    [Fact]
    public void Unknown_format()
    {
        using var tmp = new TempDir("bad-format");
        var line = Fails(2, null, "oci", "save", fx.Gzip.Ref, "--format", "tarball", tmp["out.tar"]);
        Assert.Contains("unknown --format 'tarball' (expected docker-archive or oci-archive)", line);
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }

    [Fact]
    public void Tag_that_is_not_a_name()
    {
        using var tmp = new TempDir("bad-tag");
        Assert.Contains("invalid --tag", Fails(2, null, "oci", "save", fx.Gzip.Ref, "--tag", "Bad Tag!", tmp["out.tar"]));
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }
}
