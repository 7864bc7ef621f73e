// Package rollout decides, through OpenFeature, which LLM calls get dynretry.
//
// The runner evaluates one boolean flag, [FlagKey], per LLM call with the run id as the targeting key and
// the call's attributes (provider, model, role, phase, and whatever the runner adds, such as a codebase
// size) as the rest of the evaluation context, so a provider's rule can target them:
// true puts the call in the [Treatment] cohort (dynretry decides retries), false in the [Control] cohort
// (the SDKs' own retries). [New] builds an OpenFeature multi-provider with the strategy FirstMatch that
// asks, in order:
//
//  1. an [EnvProvider]: the environment variable [EnvVar], when set, decides every call both ways
//     (kill switch and force-on), even for a call without a run id;
//  2. the provider given to New: a [PercentProvider] (a percentage of runs by [Bucket], changed at run
//     time with [PercentProvider.Set]) or any provider serving FlagKey, such as flagd with a
//     "fractional" rule on the targeting key.
//
// An evaluation error never fails a call: [Rollout.Assign] puts the call in Control and reports the error.
//
// # Operating the rollout
//
// The plan is 10% → 50% → 100% of runs, a week each, with a kill switch and a way back to 0%:
//
//   - Stages: PercentProvider.Set(true, 10), then 50, then 100; with flagd, the weight of "on" in the
//     fractional rule. Both are monotone: raising the percentage only adds runs to Treatment, lowering it
//     only removes runs, so a run keeps its cohort through a stage change in the same direction.
//   - Kill switch: LOVABLE_DYNAMIC_RETRY_DELAYS=false for a process (read at every call by [EnvOverride],
//     its one reader, so unsetting it gives the decision back to the percentage), or
//     PercentProvider.Set(false, p) (reason DISABLED) / weight 0 in flagd for the fleet.
//   - Force-on, e.g. for one executor under test: LOVABLE_DYNAMIC_RETRY_DELAYS=true.
//
// Assignment is per call, not per run: a change of stage, of the environment or of the flag file applies
// to the next call, also in runs already started, whose later calls can then change cohort. Telemetry
// therefore records the cohort on every attempt (dynretry.cohort), not once per run.
//
// PercentProvider and flagd bucket runs with different hashes (SHA-256 here, murmur3 in flagd), so moving
// a rollout from one to the other at the same percentage reshuffles which runs are in Treatment: pick one
// for the whole rollout.
//
// With flagd in file mode, replace the flag file by writing a temporary file in the same directory and
// renaming it over the old one; flagd picks the rename up within milliseconds. flagd alone stops watching a
// file that is deleted and created again, and silently keeps the old percentage: use flagdfile.FlagdFile (package rollout/flagdfile), which
// watches the directory, reports the removal (PROVIDER_STALE) and reloads the file when it is back.
package rollout
