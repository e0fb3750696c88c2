using System.CommandLine;
using System.Text.Json.Nodes;
using Treechunk.Chunking;
using Treechunk.Registry;

namespace Treechunk.Cli.Commands;

/// <summary>oci registry auth, config, list, test: settings and credentials shared with podman and skopeo.</summary>
public static class RegistryCommands
{
    public static Command Create()
    {
        var registry = new Command("registry", "Registry credentials and settings (the same files podman and skopeo use)");
        registry.Subcommands.Add(Auth());
        registry.Subcommands.Add(Config());
        registry.Subcommands.Add(List());
        registry.Subcommands.Add(Test());
        return registry;
    }

    private static Option<string> RegistryOption() => new("--registry") { Description = "Registry host[:port]", Required = true };

    private static Command Auth()
    {
        var cmd = new Command("auth", """
            Check credentials against a registry, then store them in containers' auth.json (mode
            0600: $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json), where podman
            and skopeo find them too. --logout removes them.

            Examples:
              echo "$PASSWORD" | treechunk oci registry auth --registry quay.io --username myuser --password-stdin
              treechunk oci registry auth --registry quay.io --logout
            """);
        var registry = RegistryOption();
        var logout = new Option<bool>("--logout") { Description = "Remove the stored credentials for the registry" };
        var json = GlobalOptions.Json();
        cmd.Options.Add(registry);
        cmd.Options.Add(logout);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var host = RegistryName.ParseHost(p.GetValue(registry)!);
            var file = Credentials.DefaultAuthFile;
            if (p.GetValue(logout))
            {
                bool removed = Credentials.Remove(file, host);
                if (p.GetValue(json)) Run.PrintJson(new JsonObject { ["registry"] = host, ["auth_file"] = file, ["removed"] = removed });
                else Console.WriteLine(removed ? $"removed the credentials for {host} from {file}" : $"no credentials for {host} in {file}");
                return ExitCodes.Ok;
            }
            var credential = RegistryContext.Default.ExplicitCredential
                             ?? throw new TreechunkException("give --username with --password-stdin (or --password)");
            RegistryCheck.VerifyCredentials(RegistryContext.Default, host, credential);
            Credentials.Store(file, host, credential.Username, credential.Secret);
            if (p.GetValue(json)) Run.PrintJson(new JsonObject { ["registry"] = host, ["username"] = credential.Username, ["auth_file"] = file });
            else Console.WriteLine($"logged in to {host} as {credential.Username}; credentials stored in {file}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Config()
    {
        var cmd = new Command("config", """
            Write per-registry settings as a drop-in of containers' registries.conf.d
            (~/.config/containers/registries.conf.d/50-treechunk-HOST.conf), which skopeo and
            podman read too; treechunk reads the system's registries.conf and drop-ins as well.

            Examples:
              treechunk oci registry config --registry 127.0.0.1:5000 --insecure=true
              treechunk oci registry config --registry quay.io --mirror mirror.example:5000 --upload-chunk-size 16M
            """);
        var registry = RegistryOption();
        var insecure = new Option<bool?>("--insecure") { Description = "Plain HTTP / unverified TLS for this registry (true|false)" };
        var mirror = new Option<string[]>("--mirror") { Description = "A mirror tried first for pulls (repeatable)" };
        var chunk = new Option<string?>("--upload-chunk-size") { Description = "Upload in resumable chunks of this size (treechunk only)" };
        var json = GlobalOptions.Json();
        foreach (var o in new Option[] { registry, insecure, mirror, chunk, json }) cmd.Options.Add(o);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var host = RegistryName.ParseHost(p.GetValue(registry)!);
            var current = RegistryContext.Default.Conf.Find(host);
            var mirrors = p.GetValue(mirror) is { Length: > 0 } m ? m.Select(RegistryName.ParseHost).ToList() : current?.Mirrors.ToList() ?? [];
            var chunkSize = p.GetValue(chunk) is { } c ? Sizes.Parse(c, "--upload-chunk-size") : current?.UploadChunkSize;
            var path = RegistriesConf.WriteDropIn(host, p.GetValue(insecure) ?? current?.Insecure ?? false, mirrors, chunkSize);
            if (p.GetValue(json)) Run.PrintJson(new JsonObject { ["registry"] = host, ["file"] = path });
            else Console.WriteLine($"{host}: settings written to {path}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command List()
    {
        var cmd = new Command("list", "List every configured registry (registries.conf and drop-ins) with its settings, and whether credentials are stored for it (never the secret)\n\nExample:\n  treechunk oci registry list --json");
        var json = GlobalOptions.Json();
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var conf = RegistryContext.Default.Conf;
            var rows = conf.Registries.Select(r => new
            {
                Settings = r,
                Credential = Credentials.Find(r.Prefix.Split('/')[0], r.Prefix.Contains('/') ? r.Prefix[(r.Prefix.IndexOf('/') + 1)..] : null),
            }).ToList();
            if (p.GetValue(json))
            {
                Run.PrintJson(new JsonObject
                {
                    ["files"] = new JsonArray(conf.Files.Select(f => (JsonNode)JsonValue.Create(f)!).ToArray()),
                    ["registries"] = new JsonArray(rows.Select(r => (JsonNode)new JsonObject
                    {
                        ["registry"] = r.Settings.Prefix,
                        ["insecure"] = r.Settings.Insecure,
                        ["blocked"] = r.Settings.Blocked,
                        ["mirrors"] = new JsonArray(r.Settings.Mirrors.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray()),
                        ["upload_chunk_size"] = r.Settings.UploadChunkSize,
                        ["credentials"] = r.Credential != null,
                        ["credentials_from"] = r.Credential?.From,
                        ["source"] = r.Settings.Source,
                    }).ToArray()),
                });
                return ExitCodes.Ok;
            }
            if (rows.Count == 0) Console.WriteLine($"no registries configured (read: {(conf.Files.Count > 0 ? string.Join(", ", conf.Files) : "no registries.conf files")})");
            foreach (var r in rows)
                Console.WriteLine($"{r.Settings.Prefix}  insecure={(r.Settings.Insecure ? "true" : "false")}{(r.Settings.Blocked ? " blocked" : "")}" +
                                  $"{(r.Settings.Mirrors.Count > 0 ? "  mirrors=" + string.Join(",", r.Settings.Mirrors) : "")}" +
                                  $"{(r.Settings.UploadChunkSize is { } cs ? "  upload-chunk-size=" + Sizes.Format(cs) : "")}" +
                                  $"  credentials={(r.Credential != null ? "yes (" + r.Credential.From + ")" : "no")}  [{r.Settings.Source}]");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Test()
    {
        var cmd = new Command("test", """
            Test a registry: reachable, v2 API, TLS or plain HTTP, the kind of auth, and with
            --repository pull and push permission there. One line each; exit 0 only if all hold.

            Example:
              treechunk oci registry test --registry quay.io --repository example/myapp
            """);
        var registry = RegistryOption();
        var repository = new Option<string?>("--repository") { Description = "Also check pull and push permission on this repository" };
        var json = GlobalOptions.Json();
        cmd.Options.Add(registry);
        cmd.Options.Add(repository);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var host = RegistryName.ParseHost(p.GetValue(registry)!);
            string? repo = p.GetValue(repository) is { } r ? RegistryName.Parse($"{host}/{r}", "--repository").Name.Repository : null;
            var findings = RegistryCheck.Test(RegistryContext.Default, host, repo);
            bool ok = findings.All(f => f.Ok);
            if (p.GetValue(json))
                Run.PrintJson(new JsonObject
                {
                    ["registry"] = host, ["repository"] = repo, ["ok"] = ok,
                    ["checks"] = new JsonArray(findings.Select(f => (JsonNode)new JsonObject { ["check"] = f.What, ["ok"] = f.Ok, ["detail"] = f.Detail }).ToArray()),
                });
            else
                foreach (var f in findings) Console.WriteLine($"{(f.Ok ? "ok  " : "FAIL")} {f.What}: {Treechunk.Posix.FileNames.Display(f.Detail)}");
            return ok ? ExitCodes.Ok : ExitCodes.VerificationFailed;
        }));
        return cmd;
    }
}
