/**
 * Redfish error responses as real services send them: an HTTP status plus
 * `{ error: { code, message, @Message.ExtendedInfo: [Message] } }` with ids
 * from the DMTF Base message registry, so clients are tested against the
 * bodies they will parse in the field.
 */
const REGISTRY = 'Base.1.12';

export class RedfishError extends Error {
  override name = 'RedfishError';

  constructor(
    readonly status: number,
    /** Key in the Base registry, e.g. `ResourceMissingAtURI`. */
    readonly messageKey: string,
    message: string,
    readonly messageArgs: readonly string[] = [],
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }

  get messageId(): string {
    return `${REGISTRY}.${this.messageKey}`;
  }

  body(): Record<string, unknown> {
    return {
      error: {
        code: `${REGISTRY}.GeneralError`,
        message: 'A general error has occurred. See ExtendedInfo for more information.',
        '@Message.ExtendedInfo': [
          {
            '@odata.type': '#Message.v1_1_1.Message',
            MessageId: this.messageId,
            Message: this.message,
            MessageArgs: this.messageArgs,
            MessageSeverity: this.status >= 500 ? 'Critical' : 'Warning',
            Resolution: resolutions[this.messageKey] ?? 'None.',
          },
        ],
      },
    };
  }
}

const resolutions: Record<string, string> = {
  NoValidSession: 'Establish a session before attempting any operations.',
  ResourceAtUriUnauthorized: 'Ensure that the appropriate access is provided for the service in order for it to access the URI.',
  ResourceMissingAtURI: 'Place a valid resource at the URI or correct the URI and resubmit the request.',
  MalformedJSON: 'Ensure that the request body is valid JSON and resubmit the request.',
  PreconditionFailed: 'Try the operation again using the appropriate ETag.',
  InternalError: 'Resubmit the request.  If the problem persists, consider resetting the service.',
};

export const redfishErrors = {
  noValidSession: () => new RedfishError(401, 'NoValidSession', 'There is no valid session established with the implementation.', [], { 'www-authenticate': 'Basic realm="Redfish"' }),
  unauthorized: (uri: string) =>
    new RedfishError(401, 'ResourceAtUriUnauthorized', `While accessing the resource at ${uri}, the service received an authorization error unauthorized.`, [uri, 'unauthorized']),
  insufficientPrivilege: () => new RedfishError(403, 'InsufficientPrivilege', 'There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.'),
  notFound: (uri: string) => new RedfishError(404, 'ResourceMissingAtURI', `The resource at the URI ${uri} was not found.`, [uri]),
  methodNotAllowed: (method: string, uri: string, allow: readonly string[]) =>
    new RedfishError(405, 'OperationNotAllowed', `The method ${method} is not allowed on ${uri}.`, [method, uri], { allow: allow.join(', ') }),
  conflict: (reason: string) => new RedfishError(409, 'OperationNotAllowed', `The operation was not successful because ${reason}.`, [reason]),
  lengthRequired: () => new RedfishError(411, 'GeneralError', 'A request body must be sent with a Content-Length header; chunked transfer encoding is not supported.'),
  preconditionFailed: () => new RedfishError(412, 'PreconditionFailed', 'The ETag supplied did not match the ETag required to change this resource.'),
  payloadTooLarge: (limit: number) => new RedfishError(413, 'GeneralError', `The request body exceeds ${limit} bytes.`, [String(limit)]),
  unsupportedMediaType: (type: string) => new RedfishError(415, 'GeneralError', `The content type ${type} is not supported; send application/json.`, [type]),
  malformedJson: () => new RedfishError(400, 'MalformedJSON', 'The request body submitted was malformed JSON and could not be parsed by the receiving service.'),
  propertyMissing: (property: string) => new RedfishError(400, 'PropertyMissing', `The property ${property} is a required property and must be included in the request.`, [property]),
  propertyUnknown: (property: string) => new RedfishError(400, 'PropertyUnknown', `The property ${property} is not in the list of valid properties for the resource.`, [property]),
  propertyNotWritable: (property: string) => new RedfishError(400, 'PropertyNotWritable', `The property ${property} is a read only property and cannot be assigned a value.`, [property]),
  propertyValueNotInList: (value: string, property: string) =>
    new RedfishError(400, 'PropertyValueNotInList', `The value ${value} for the property ${property} is not in the list of acceptable values.`, [value, property]),
  actionParameterMissing: (action: string, parameter: string) =>
    new RedfishError(400, 'ActionParameterMissing', `The action ${action} requires the parameter ${parameter} to be present in the request body.`, [action, parameter]),
  actionParameterValueNotInList: (value: string, parameter: string, action: string) =>
    new RedfishError(400, 'ActionParameterValueNotInList', `The value ${value} for the parameter ${parameter} in the action ${action} is not in the list of acceptable values.`, [
      value,
      parameter,
      action,
    ]),
  internalError: () => new RedfishError(500, 'InternalError', 'The request failed due to an internal service error.  The service is still operational.'),
} as const;
