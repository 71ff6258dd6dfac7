/** A request a lab hypervisor refuses, with the HTTP status and error code its API answers. */
export class HypervisorApiError extends Error {
  override name = 'HypervisorApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
