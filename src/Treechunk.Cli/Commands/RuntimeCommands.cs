using System.CommandLine;
using System.Text.Json.Nodes;
using Treechunk.Chunking;
using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Runtimes;
using Treechunk.Transports;

namespace Treechunk.Cli.Commands;

/// <summary>oci save, import-podman, import-docker: images into files and local engines.</summary>
public static class RuntimeCommands
{
    private const string ImageHelp = "Image: docker://HOST/REPO[:TAG|@DIGEST], oci:PATH[:TAG|@DIGEST], oci-archive:FILE[:TAG|@DIGEST], dir:CHUNK_DIR, or a bare path";
    private const string TagHelp = "Name of the loaded image: a tag (replaces the reference's) or NAME[:TAG] (default: the reference's name, localhost/BASENAME:TAG for a local image); with --registry/--repository, the tag to pull";

    public static void AddTo(Command oci)
    {
        oci.Subcommands.Add(Save());
        oci.Subcommands.Add(ImportPodman());
        oci.Subcommands.Add(ImportDocker());
    }

    private static Command Save()
    {
        var cmd = new Command("save", """
            Write an image to a file, as docker save or podman save would: a docker-archive
            (manifest.json, repositories, config and layers) that is at the same time an OCI
            layout (oci-layout, index.json, blobs/sha256), the two views sharing the blob files,
            so engines old and new load it; or an oci-archive (digest kept). The file is written
            under a temp name and renamed when complete.

            zstd layers cannot go into a docker-archive: they are recompressed to gzip on the
            fly (the diff_ids stay, the layer digests and the manifest change), and the command
            says so on stderr.

            Examples:
              treechunk oci save oci:./image:v1 --format docker-archive image.tar
              treechunk oci save docker://quay.io/example/myapp:latest --format oci-archive myapp.tar
            """);
        var image = new Argument<string>("IMAGE") { Description = ImageHelp };
        var file = new Argument<string>("FILE") { Description = "The archive to write (replaced if it exists)" };
        var format = new Option<string>("--format") { Description = "docker-archive (default) or oci-archive", DefaultValueFactory = _ => "docker-archive" };
        var tag = new Option<string?>("--tag") { Description = "Name in the docker-archive's RepoTags: a tag or NAME[:TAG] (default: the reference's name)" };
        var json = GlobalOptions.Json();
        cmd.Arguments.Add(image);
        cmd.Arguments.Add(file);
        foreach (var o in new Option[] { format, tag, GlobalOptions.Platform(), json }) cmd.Options.Add(o);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var fmt = p.GetValue(format)!;
            if (fmt is not ("docker-archive" or "oci-archive"))
                throw new TreechunkException($"unknown --format '{fmt}' (expected docker-archive or oci-archive)");
            var path = p.GetValue(file)!;
            var parent = Path.GetDirectoryName(Path.GetFullPath(path))!;
            if (!Directory.Exists(parent)) throw new TreechunkException($"output directory {parent} does not exist");
            if (Directory.Exists(path)) throw new TreechunkException($"output {path} is a directory, not a file");
            var text = p.GetValue(image)!;
            bool quiet = p.GetValue(json);
            using var local = Open(p, text, quiet);
            var img = local.Image;
            var name = EngineImages.Name(EngineImages.DefaultName(ImageReference.Parse(text), RefName(img)), p.GetValue(tag));
            JsonObject result;
            if (fmt == "oci-archive")
            {
                using var dest = OciArchiveDestination.OpenOrCreate(path, force: true);
                var copied = TransferProgress.Run(quiet, progress =>
                    ImageCopier.Copy(img.Source, img.Descriptor, dest, name[(name.LastIndexOf(':') + 1)..], 6, progress, Run.Log));
                result = Summary("oci-archive", text, name, img, img.Descriptor.Digest, 0, new FileInfo(path).Length);
                if (!quiet) Console.WriteLine($"{path}: oci-archive of {img.Descriptor.Digest} ({copied.BlobsCopied} blobs, {Sizes.Format(new FileInfo(path).Length)})");
            }
            else
            {
                var archive = Plan(img, name);
                using var output = AtomicFile.Create(path);
                long bytes = TransferProgress.Run(quiet, progress => archive.WriteTo(output.Stream, progress));
                output.Commit(path);
                result = Summary("docker-archive", text, name, img, archive.ManifestDescriptor.Digest, archive.RecompressedLayers, bytes);
                if (!quiet) Console.WriteLine($"{path}: docker-archive + OCI layout of {name} (config {img.Manifest.Config.Digest}, {img.Layers.Count} layers, {Sizes.Format(bytes)})");
            }
            result["file"] = path;
            if (quiet) Run.PrintJson(result);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command ImportPodman()
    {
        var cmd = new Command("import-podman", """
            Load an image into podman: the docker-archive (with the OCI layout inside) streams
            into `podman load` on stdin, no temp file of ours. A registry image (--registry,
            --repository, --tag, or docker://) is pulled first. The loaded image is named after
            the reference (--tag overrides). zstd layers are recompressed to gzip on the way.

            Podman's storage is podman's: its own configuration and CONTAINERS_STORAGE_CONF
            apply, and --root, --runroot and --storage-driver are passed to podman as its global
            flags of the same names.

            Examples:
              treechunk oci import-podman --registry=quay.io --repository=example/myapp --tag=latest
              treechunk oci import-podman oci:./image:v1 --tag example/os:v1
              treechunk oci import-podman ./image --root /tmp/st --runroot /tmp/run --storage-driver vfs
            """);
        var parts = new ImportParts(cmd);
        var root = new Option<string?>("--root") { Description = "podman --root: where podman's storage lives" };
        var runRoot = new Option<string?>("--runroot") { Description = "podman --runroot: podman's state directory" };
        var driver = new Option<string?>("--storage-driver") { Description = "podman --storage-driver (e.g. vfs, overlay)" };
        foreach (var o in new Option[] { root, runRoot, driver }) cmd.Options.Add(o);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var source = parts.Source(p);
            var podman = Podman.Locate();
            var options = new PodmanOptions(p.GetValue(root), p.GetValue(runRoot), p.GetValue(driver));
            return parts.Import(p, source, "podman", archive => Podman.Load(podman, options, archive, Run.Log));
        }));
        return cmd;
    }

    private static Command ImportDocker()
    {
        var cmd = new Command("import-docker", """
            Load an image into the Docker daemon through its API (POST /images/load; the docker
            CLI is not needed): the docker-archive streams as the request body, no temp file of
            ours. The daemon is --docker-host, else DOCKER_HOST, else unix:///var/run/docker.sock
            (unix:///PATH or plain tcp://HOST:PORT). A registry image is pulled first; the loaded
            image is named after the reference (--tag overrides). zstd layers, which Docker's
            archives cannot hold, are recompressed to gzip on the way.

            Examples:
              treechunk oci import-docker --registry=quay.io --repository=example/myapp --tag=latest
              treechunk oci import-docker oci:./image:v1 --tag example/os:v1
              DOCKER_HOST=unix:///run/user/1000/docker.sock treechunk oci import-docker ./image
            """);
        var parts = new ImportParts(cmd);
        var host = new Option<string?>("--docker-host") { Description = "The daemon: unix:///PATH or tcp://HOST:PORT (default: $DOCKER_HOST, else unix:///var/run/docker.sock)" };
        cmd.Options.Add(host);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var source = parts.Source(p);
            // Asked before the image is opened or pulled: a daemon that is not there fails at once.
            using var engine = DockerEngine.Connect(p.GetValue(host));
            var version = engine.Ping();
            Run.Log($"Docker daemon at {engine.Host}: API {version}");
            return parts.Import(p, source, "docker", engine.Load);
        }));
        return cmd;
    }

    /// <summary>The argument and options both imports take, and the import itself.</summary>
    private sealed class ImportParts
    {
        private readonly Argument<string?> _image = new("IMAGE") { Description = ImageHelp + " (or --registry/--repository/--tag)", Arity = ArgumentArity.ZeroOrOne };
        private readonly TransferCommands.SeedReference _seed = new();
        private readonly Option<bool> _json = GlobalOptions.Json();

        public ImportParts(Command cmd)
        {
            cmd.Arguments.Add(_image);
            _seed.Tag.Description = TagHelp;
            _seed.AddTo(cmd, digest: false);
            cmd.Options.Add(GlobalOptions.Platform());
            cmd.Options.Add(_json);
        }

        /// <summary>The image the command names: its reference text, and whether the seed flags named it (their --tag is then the tag to pull, not a new name).</summary>
        public (string Text, bool FromFlags) Source(ParseResult p) => _seed.ImageOrFlags(p, _image);

        public int Import(ParseResult p, (string Text, bool FromFlags) source, string engine, Func<Action<Stream>, EngineLoadResult> load)
        {
            var text = source.Text;
            bool quiet = p.GetValue(_json);
            using var local = Open(p, text, quiet);
            var img = local.Image;
            var defaultName = EngineImages.DefaultName(ImageReference.Parse(text), RefName(img));
            var name = EngineImages.Name(defaultName, source.FromFlags ? null : p.GetValue(_seed.Tag));
            var archive = Plan(img, name);
            long bytes = 0;
            var loaded = TransferProgress.Run(quiet, progress => load(s => bytes = archive.WriteTo(s, progress)));
            if (quiet)
            {
                var result = Summary("docker-archive", text, name, img, archive.ManifestDescriptor.Digest, archive.RecompressedLayers, bytes);
                result["engine"] = engine;
                result["pulled"] = local.Pulled;
                result["loaded"] = new JsonArray(loaded.Loaded.Select(l => (JsonNode)JsonValue.Create(l)!).ToArray());
                Run.PrintJson(result);
            }
            else
                Console.WriteLine($"{engine}: loaded {string.Join(", ", loaded.Loaded.DefaultIfEmpty(name))} (image id {img.Manifest.Config.Digest}, {img.Layers.Count} layers, {Sizes.Format(bytes)} streamed{(archive.RecompressedLayers > 0 ? $", {archive.RecompressedLayers} recompressed to gzip" : "")})");
            return ExitCodes.Ok;
        }
    }

    /// <summary>Opens the image for the command's --platform; a registry image is pulled into a scratch layout.</summary>
    private static EngineImages.LocalImage Open(ParseResult p, string text, bool quiet)
    {
        var image = Run.OpenImage(p, text);
        try
        {
            return image.Source is Registry.RegistrySource
                ? TransferProgress.Run(quiet, progress => EngineImages.MakeLocal(image, progress, Run.Log))
                : EngineImages.MakeLocal(image);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    private static string? RefName(Image img) =>
        (img.IndexDescriptor?.Annotations ?? img.Descriptor.Annotations)?.GetValueOrDefault(Annotations.RefName);

    private static DockerArchive Plan(Image img, string name)
    {
        int zstd = img.Layers.Count(l => DockerArchive.NeedsRecompression(l.Descriptor));
        if (zstd > 0)
            Run.Warn($"{zstd} of {img.Layers.Count} layers are zstd, which a docker-archive cannot hold: recompressing them to gzip (the diff_ids stay, the layer digests change)");
        return DockerArchive.Plan(img, name, Run.Log);
    }

    private static JsonObject Summary(string format, string source, string name, Image img, string archiveDigest, int recompressed, long bytes) => new()
    {
        ["source"] = source,
        ["format"] = format,
        ["name"] = name,
        ["manifest_digest"] = img.Descriptor.Digest,
        ["archive_manifest_digest"] = archiveDigest,
        ["config_digest"] = img.Manifest.Config.Digest,
        ["layers"] = img.Layers.Count,
        ["recompressed_layers"] = recompressed,
        ["bytes"] = bytes,
    };
}
