export {
  BackendUnavailableError,
  findRegisteredBackend,
  loadRegisteredBackend,
  type RegisteredBackend,
  registeredBackends,
  resolveBackend,
  UnknownBackendError,
} from "./backend-registry.js";
