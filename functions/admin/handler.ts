// Placeholder: replaced by the real middy handler in the walking skeleton.
export const handler = async (): Promise<unknown> => ({ statusCode: 501 });
