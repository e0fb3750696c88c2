using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Treechunk.Transports;

namespace Treechunk.Cli.Commands;

public static class GlobalOptions
{
    public static readonly Option<bool> Verbose = new("--verbose", "-v") { Description = "Print each step and warning as it happens (on stderr)", Recursive = true };
    public static readonly Option<bool> Debug = new("--debug") { Description = "Show full details (stack traces) for errors", Recursive = true };

    public static Option<bool> Json() => new("--json") { Description = "Print the result as JSON for scripts" };

    public const string PlatformName = "--platform";

    /// <summary>--platform of commands that read one image: which image of an index (default: the host's).</summary>
    public static Option<string?> Platform() => new(PlatformName) { Description = "From an index, the image for OS/ARCH[/VARIANT] (default: the host's platform)" };

    // Registry access, for every command that names a docker:// image.
    public static readonly Option<bool> Insecure = new("--insecure") { Description = "Registries: allow plain HTTP and unverified TLS (also per registry: insecure = true in registries.conf)", Recursive = true };
    public static readonly Option<string?> Username = new("--username") { Description = "Registries: user name (with --password or --password-stdin; default: the auth files podman and docker use)", Recursive = true };
    public static readonly Option<string?> Password = new("--password") { Description = "Registries: password (visible to other users in the process list: prefer --password-stdin)", Recursive = true };
    public static readonly Option<bool> PasswordStdin = new("--password-stdin") { Description = "Registries: read the password from stdin", Recursive = true };

    public static readonly Option[] All = [Verbose, Debug, Insecure, Username, Password, PasswordStdin];

    /// <summary>Commands whose --password-stdin is a signing key's password, not a registry's (generate-key, sign).</summary>
    public static readonly HashSet<Command> KeyPasswordCommands = [];
}

/// <summary>
/// Runs a command body with the error contract of the README: user errors are one line on stderr
/// with a meaningful exit code; only --debug shows a stack trace. Also the shared output helpers.
/// </summary>
public static class Run
{
    private static bool _verbose;

    public static int Guarded(ParseResult parse, Func<int> body)
    {
        bool debug = parse.GetValue(GlobalOptions.Debug);
        _verbose = parse.GetValue(GlobalOptions.Verbose);
        try
        {
            Registry.RegistryContext.Default = RegistryContextFrom(parse);
            try
            {
                return body();
            }
            finally
            {
                Registry.RegistryContext.Default.Dispose();
            }
        }
        catch (TreechunkException e)
        {
            Error(e.Message, debug ? e : null);
            return e.ExitCode;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Error(e.Message, debug ? e : null);
            return ExitCodes.EnvironmentError;
        }
        catch (AggregateException ae) when (ae.Flatten().InnerExceptions.FirstOrDefault() is TreechunkException te)
        {
            Error(te.Message, debug ? ae : null);
            return te.ExitCode;
        }
        catch (AggregateException ae) when (ae.Flatten().InnerExceptions.FirstOrDefault() is IOException or UnauthorizedAccessException)
        {
            Error(ae.Flatten().InnerExceptions[0].Message, debug ? ae : null);
            return ExitCodes.EnvironmentError;
        }
        catch (Exception e)
        {
            Error($"internal error: {e.GetType().Name}: {e.Message.Split('\n')[0]} (please report it; --debug shows details)", debug ? e : null);
            return ExitCodes.InternalError;
        }
    }

    /// <summary>The registry session of this command: --insecure, and --username with --password or --password-stdin.</summary>
    private static Registry.RegistryContext RegistryContextFrom(ParseResult parse)
    {
        var user = parse.GetValue(GlobalOptions.Username);
        var password = parse.GetValue(GlobalOptions.Password);
        if (parse.GetValue(GlobalOptions.PasswordStdin) && !GlobalOptions.KeyPasswordCommands.Contains(parse.CommandResult.Command))
        {
            if (password != null) throw new TreechunkException("give --password or --password-stdin, not both");
            password = Console.In.ReadToEnd().TrimEnd('\r', '\n');
        }
        if ((user == null) != (password == null))
            throw new TreechunkException(user == null ? "--password needs --username" : "--username needs --password or --password-stdin");
        return new Registry.RegistryContext
        {
            Insecure = parse.GetValue(GlobalOptions.Insecure),
            ExplicitCredential = user != null ? new Registry.RegistryCredential(user, password!, "the command line") : null,
            Log = _verbose ? Log : null,
        };
    }

    private static void Error(string message, Exception? detail)
    {
        // One printable line whatever the message holds: names with bytes that are not UTF-8 or
        // control characters are escaped (\xNN) where they were formatted, and here as a last resort.
        Console.Error.WriteLine("treechunk: error: " + Treechunk.Posix.FileNames.Display(message.ReplaceLineEndings(" ")));
        if (detail != null) Console.Error.WriteLine(detail.ToString());
    }

    public static void Warn(string message) => Console.Error.WriteLine("warning: " + Treechunk.Posix.FileNames.Display(message.ReplaceLineEndings(" ")));

    /// <summary>A step worth telling with --verbose, on stderr (stdout stays the result).</summary>
    public static void Log(string message)
    {
        if (_verbose) Console.Error.WriteLine(message);
    }

    public static bool IsVerbose => _verbose;

    // Relaxed escaping: "tar+gzip" and "<none>" print as themselves, not as \u002B and \u003C.
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void PrintJson(JsonNode node) => Console.Out.WriteLine(node.ToJsonString(JsonOptions));

    public static string JsonText(JsonNode node) => node.ToJsonString(JsonOptions);

    /// <summary>
    /// Opens the image a reference names for the command's --platform: from an index exactly
    /// that platform's image (else an error listing what it has), a single image only when it is
    /// of that platform. Without --platform, an index gives the host's image.
    /// </summary>
    public static Oci.Image OpenImage(ParseResult p, string text)
    {
        var option = p.CommandResult.Command.Options.OfType<Option<string?>>().FirstOrDefault(o => o.Name == GlobalOptions.PlatformName);
        if (option == null || p.GetValue(option) is not { } asked) return OpenImage(text);
        var platform = Oci.Platforms.Parse(asked);
        var reference = ImageReference.Parse(text);
        Log($"opening {reference} for {asked}");
        var source = reference.OpenSource();
        Oci.Image image;
        try
        {
            var top = source.Resolve(reference.Tag, reference.Digest);
            if (Oci.MediaTypes.IsIndex(top.MediaType)) top = Oci.ImageSources.SelectPlatform(source, top, platform, asked);
            image = Oci.Image.Open(source, top, ownsSource: true);
        }
        catch
        {
            source.Dispose();
            throw;
        }
        var c = image.Config;
        if (c.Architecture != platform.Architecture || c.Os != platform.Os || (platform.Variant != null && c.Variant != platform.Variant))
        {
            image.Dispose();
            throw new TreechunkException($"{reference} is {c.Os}/{c.Architecture}{(c.Variant != null ? "/" + c.Variant : "")}, not {asked}");
        }
        return image;
    }

    /// <summary>Opens the image a reference names (for the host platform when it names an index), telling it with --verbose.</summary>
    public static Oci.Image OpenImage(string text, Oci.Platform? platform = null)
    {
        var reference = ImageReference.Parse(text);
        Log($"opening {reference}");
        var image = reference.OpenImage(platform);
        Log($"{image.Name}: manifest {image.Descriptor.Digest}, config {image.Manifest.Config.Digest}, {image.Layers.Count} layers");
        return image;
    }

    /// <summary>Opens where an image goes, telling it with --verbose.</summary>
    public static Oci.IImageDestination OpenDestination(ImageReference reference, bool force)
    {
        Log($"writing to {reference}");
        return reference.OpenDestination(force);
    }
}
